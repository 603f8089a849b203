"""Paper keys: text and HTML forms, the QR code's content, round trips and typos (docs/keys.md, "Formats")."""
import base64
import json
import re

import pytest
import segno

from tapefs.datastore.crypt_config import CryptConfig
from tapefs.keys.errors import KeyExists, KeyInputError
from tapefs.keys.key_restore import restore_from_text
from tapefs.keys.key_store import TapeKeyStore, protect_key
from tapefs.keys.paperkey import BEGIN_MARKER, END_MARKER, key_lines, paperkey_html, paperkey_text, parse_key_text

KEY = bytes(range(32))
FINGERPRINT = CryptConfig(KEY).fingerprint_text()
PASSWORD = b"paper password"

_HALF_BLOCK_ROWS = {" ": (0, 0), "\u2580": (1, 0), "\u2584": (0, 1), "\u2588": (1, 1)}


@pytest.fixture(scope="module")
def key_config():
    return protect_key(KEY, PASSWORD, kdf="pbkdf2", hint="on paper")


def qr_matrix_from_text(qr_lines):
    rows = []
    for line in qr_lines:
        pairs = [_HALF_BLOCK_ROWS[c] for c in line]
        rows += [[upper for upper, _ in pairs], [lower for _, lower in pairs]]
    return rows


def test_text_has_subject_marker_block_of_pretty_json_and_the_qr_code_of_those_lines(key_config):
    text = paperkey_text(key_config, subject="tape key of pool daily")
    lines = text.splitlines()
    assert lines[:3] == ["Subject: tape key of pool daily", "", BEGIN_MARKER]
    end = lines.index(END_MARKER)
    assert lines[3:end] == key_lines(key_config)
    assert json.loads("\n".join(lines[3:end])) == key_config.to_json()
    expected = [list(map(int, row)) for row in segno.make_qr("\n".join(key_lines(key_config)), error="m",
                                                              boost_error=False).matrix_iter(border=0)]
    drawn = qr_matrix_from_text(lines[end + 1:])
    assert drawn[:len(expected)] == expected and all(not any(row) for row in drawn[len(expected):])


def test_text_round_trip_restores_the_key(tmp_path, key_config):
    store = TapeKeyStore(tmp_path)
    assert restore_from_text(store, "some words before\n" + paperkey_text(key_config), PASSWORD) == FINGERPRINT
    assert store.raw_key(FINGERPRINT) == KEY
    with pytest.raises(KeyExists):
        restore_from_text(store, paperkey_text(key_config), PASSWORD)


def test_key_file_json_restores_the_key(tmp_path, key_config):
    store = TapeKeyStore(tmp_path)
    restore_from_text(store, json.dumps(key_config.to_json()), PASSWORD)
    assert store.raw_key(FINGERPRINT) == KEY


def test_html_page_embeds_the_block_and_an_unpadded_base64_svg(key_config):
    page = paperkey_html(key_config, subject="daily <pool>")
    assert "<title>Proxmox Backup Paperkey</title>" in page and "Subject: daily &lt;pool&gt;" in page
    assert BEGIN_MARKER in page and END_MARKER in page
    assert key_config.to_json()["data"] in page
    (encoded,) = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/]*)"', page)
    svg = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    assert svg.startswith(b"<?xml") and b"<svg" in svg


def _typo(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


def test_typo_breaking_the_json_names_the_line(key_config):
    text = _typo(paperkey_text(key_config), '"created":', '"created"')
    with pytest.raises(KeyInputError, match=r"paper key: line \d+ of the key block is not valid JSON.*typo"):
        parse_key_text(text)


def test_typo_in_the_fingerprint_is_reported(tmp_path, key_config):
    text = _typo(paperkey_text(key_config), FINGERPRINT[:5], "0f:ab")
    with pytest.raises(KeyInputError, match="fingerprint does not match"):
        restore_from_text(TapeKeyStore(tmp_path), text, PASSWORD)
    text = _typo(paperkey_text(key_config), FINGERPRINT[:5], "0g:ab")
    with pytest.raises(KeyInputError, match="malformed key fingerprint.*typo"):
        parse_key_text(text)


def test_typo_in_the_data_fails_naming_the_typo_and_stores_nothing(tmp_path, key_config):
    data = key_config.to_json()["data"]
    text = _typo(paperkey_text(key_config), data, ("A" if data[0] != "A" else "B") + data[1:])
    store = TapeKeyStore(tmp_path)
    with pytest.raises(KeyInputError, match="typo in the salt, data or fingerprint"):
        restore_from_text(store, text, PASSWORD)
    assert store.key_configs() == []


def test_text_without_markers_or_json_is_refused():
    with pytest.raises(KeyInputError, match="neither key config JSON nor a paper key"):
        parse_key_text("just some text")


def test_text_copied_from_a_page_with_non_breaking_spaces_parses(key_config):
    text = paperkey_text(key_config).replace("  ", "\u00a0\u00a0")
    assert parse_key_text(text)[0].to_json() == key_config.to_json()
