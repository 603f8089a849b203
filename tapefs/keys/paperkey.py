"""Paper keys (docs/keys.md, "Formats"): a tape key's password-protected KeyConfig as printable text and a QR code.

The block between the markers is the KeyConfig as pretty JSON, so typing it back in (or scanning the
QR code, which holds the same lines) gives a key config that ``key restore`` can read. Only the
protected form is ever printed: a paper key is useless without its password.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging

import segno

from tapefs.datastore.errors import CryptoError
from tapefs.datastore.key_config import KeyConfig
from tapefs.keys.errors import KeyInputError

log = logging.getLogger(__name__)

BEGIN_MARKER = "-----BEGIN PROXMOX BACKUP KEY-----"
END_MARKER = "-----END PROXMOX BACKUP KEY-----"
HTML_TITLE = "Proxmox Backup Paperkey"

# Two QR rows per text line: (upper dark, lower dark) -> character.
_HALF_BLOCKS = {(False, False): " ", (True, False): "\u2580", (False, True): "\u2584", (True, True): "\u2588"}


def key_lines(key_config: KeyConfig) -> list[str]:
    return json.dumps(key_config.to_json(), indent=2).splitlines()


def _qr_code(lines: list[str]) -> segno.QRCode:
    # Error level M as PBS asks qrencode for (-lm); segno would otherwise raise it when space allows.
    return segno.make_qr("\n".join(lines), error="m", boost_error=False)


def _qr_text(qr: segno.QRCode) -> str:
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=0)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    return "\n".join(
        "".join(_HALF_BLOCKS[(bool(upper), bool(lower))] for upper, lower in zip(rows[i], rows[i + 1], strict=True))
        for i in range(0, len(rows), 2)
    )


def paperkey_text(key_config: KeyConfig, subject: str | None = None) -> str:
    """Marker block and a QR code in Unicode half blocks (dark modules drawn), as for a terminal."""
    lines = key_lines(key_config)
    head = [f"Subject: {subject}", ""] if subject else []
    return "\n".join([*head, BEGIN_MARKER, *lines, END_MARKER, _qr_text(_qr_code(lines))]) + "\n"


def paperkey_html(key_config: KeyConfig, subject: str | None = None) -> str:
    """A page to print: the marker block and the QR code as an SVG image."""
    lines = key_lines(key_config)
    svg = io.BytesIO()
    _qr_code(lines).save(svg, kind="svg", border=4)
    # PBS embeds the SVG as unpadded standard base64.
    svg_uri = "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode("ascii").rstrip("=")
    # <pre>, not PBS's <p> with &nbsp;: text copied from the page must parse as JSON again.
    block = html.escape("\n".join([BEGIN_MARKER, *lines, END_MARKER]))
    subject_html = f"<p>Subject: {html.escape(subject)}</p>\n" if subject else ""
    return (
        f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{HTML_TITLE}</title>\n'
        "<style>.paperkey { page-break-inside: avoid; font-family: monospace; }</style>\n</head>\n<body>\n"
        f'{subject_html}<div class="paperkey">\n<pre>\n{block}\n</pre>\n'
        f'<img alt="QR code of the key" width="500pt" height="500pt" src="{svg_uri}">\n'
        "</div>\n</body>\n</html>\n"
    )


def parse_key_text(text: str) -> tuple[KeyConfig, bool]:
    """A KeyConfig from a key file's JSON or from paper key text (the lines between the markers,
    anything around them ignored). Returns it and whether it came from a paper key."""
    # Text copied from a PBS paper key page carries its &nbsp; indentation as U+00A0.
    text = text.replace("\u00a0", " ")
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return _key_config(value, "key file"), False
    start, end = text.find(BEGIN_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        raise KeyInputError(f"neither key config JSON nor a paper key ({BEGIN_MARKER} ... {END_MARKER})")
    block = text[start + len(BEGIN_MARKER) : end]
    try:
        value = json.loads(block)
    except ValueError as error:
        line = getattr(error, "lineno", 1) - 1  # the block starts with the rest of the marker line
        raise KeyInputError(
            f"paper key: line {line} of the key block is not valid JSON ({error.msg}): check it for a typo"
        ) from None
    if not isinstance(value, dict):
        raise KeyInputError("paper key: the key block is not a JSON object: check it for a typo")
    return _key_config(value, "paper key"), True


def _key_config(value: dict, source: str) -> KeyConfig:
    try:
        key_config = KeyConfig.from_json(value)
    except CryptoError as error:
        raise KeyInputError(f"{source}: {error}: check it for a typo") from None
    if key_config.fingerprint is None:
        raise KeyInputError(f"{source}: the key config has no fingerprint")
    return key_config
