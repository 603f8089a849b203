"""``tapefs key``: tape encryption keys as proxmox-tape manages them (create, list, show,
change-passphrase, paperkey, restore, remove). Passwords come from the terminal or from a file
descriptor (``--password-fd``); no command ever prints a key, only fingerprints and protected copies.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from tapefs.datastore.crypt_config import format_fingerprint
from tapefs.datastore.key_config import KeyConfig
from tapefs.jobs.key_from_tape import restore_from_drive
from tapefs.keys import key_restore
from tapefs.keys.key_store import KDF_NAMES, MAX_HINT_LENGTH, TapeKeyStore, normalize_fingerprint
from tapefs.keys.paperkey import paperkey_html, paperkey_text
from tapefs.media import drive_selection
from tapefs.media.tape_config import load_media_pool_config, load_tape_config
from tapefs_tools.cli import emit, format_value, key_value_table, output_format_option, simple_table
from tapefs_tools.tapefs_tape_admin import drive_option

#: The text table leaves out "kdf" and "modified" so the 95-character fingerprint fits (JSON has all).
TABLE_COLUMNS = ("fingerprint", "hint", "created")


def _read_fd(fd: int) -> bytes:
    """One line from ``fd``, read a byte at a time so that nothing after it is consumed: old and
    new password may come from the same descriptor, one per line."""
    line = bytearray()
    try:
        while (byte := os.read(fd, 1)) and byte != b"\n":
            line += byte
    except OSError as error:
        raise click.ClickException(f"cannot read the password from file descriptor {fd}: {error.strerror}") from None
    return bytes(line).rstrip(b"\r")


def _password(fd: int | None, prompt: str, confirm: bool) -> bytes:
    if fd is not None:
        return _read_fd(fd)
    if not sys.stdin.isatty():
        raise click.ClickException("no terminal to ask for the password: give it with --password-fd")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm).encode()


def password_fd_option(fn: Callable) -> Callable:
    return click.option(
        "--password-fd",
        type=int,
        default=None,
        help="Read the password from this file descriptor (one line) instead of the terminal.",
    )(fn)


def kdf_option(fn: Callable) -> Callable:
    return click.option(
        "--kdf",
        type=click.Choice(tuple(KDF_NAMES)),
        default="scrypt",
        show_default=True,
        help="Key derivation for the password.",
    )(fn)


def _key_row(key_config: KeyConfig) -> dict:
    return {
        "fingerprint": format_fingerprint(key_config.fingerprint),
        "hint": key_config.hint,
        "kdf": key_config.kdf.name if key_config.kdf else None,
        "created": key_config.created,
        "modified": key_config.modified,
    }


def _emit_fingerprint(output_format: str, fingerprint: str) -> None:
    emit(output_format, {"fingerprint": fingerprint}, lambda _out: click.echo(fingerprint))


@click.group("key")
def key() -> None:
    """Tape encryption keys (fingerprints, password-protected copies, paper keys)."""


@key.command("create")
@click.option("--hint", required=True, help=f"Password hint, 1 to {MAX_HINT_LENGTH} characters (stored in the clear).")
@kdf_option
@password_fd_option
@output_format_option
def key_create(hint: str, kdf: str, password_fd: int | None, output_format: str) -> None:
    """Create a random tape key protected by a password; prints its fingerprint."""
    password = _password(password_fd, "Tape key password", confirm=True)
    _emit_fingerprint(output_format, TapeKeyStore().create(password, hint, kdf))


@key.command("list")
@output_format_option
def key_list(output_format: str) -> None:
    """List the tape keys (fingerprint, hint, dates)."""
    rows = [_key_row(config) for config in TapeKeyStore().key_configs()]

    def render(out) -> None:
        table = simple_table(*TABLE_COLUMNS)
        for row in rows:
            table.add_row(*(format_value(row[column]) for column in TABLE_COLUMNS))
        out.print(table if rows else "no tape encryption keys")

    emit(output_format, rows, render)


@key.command("show")
@click.argument("fingerprint")
@output_format_option
def key_show(fingerprint: str, output_format: str) -> None:
    """Show one tape key's fingerprint, hint and dates."""
    row = _key_row(TapeKeyStore().key_config(fingerprint))
    emit(output_format, row, lambda out: out.print(key_value_table(list(row.items()))))


@key.command("change-passphrase")
@click.argument("fingerprint")
@click.option("--hint", default=None, help="New password hint (default: keep the old one).")
@click.option(
    "--force",
    is_flag=True,
    default=False,
    help="Reset the password without knowing the old one, from the root-only raw key copy.",
)
@kdf_option
@password_fd_option
@click.option(
    "--new-password-fd",
    type=int,
    default=None,
    help="Read the new password from this file descriptor (may be the same as --password-fd: next line).",
)
def key_change_passphrase(
    fingerprint: str, hint: str | None, force: bool, kdf: str, password_fd: int | None, new_password_fd: int | None
) -> None:
    """Protect a tape key with a new password."""
    old_password = None if force else _password(password_fd, "Current password", confirm=False)
    new_password = _password(new_password_fd, "New password", confirm=True)
    TapeKeyStore().change_passphrase(fingerprint, new_password, old_password, hint, kdf, force)


@key.command("paperkey")
@click.argument("fingerprint")
@click.option("--subject", default=None, help="A line printed above the key.")
@click.option(
    "--output-format",
    type=click.Choice(("html", "text")),
    default="html",
    show_default=True,
    help="An HTML page to print, or text with a QR code for the terminal.",
)
def key_paperkey(fingerprint: str, subject: str | None, output_format: str) -> None:
    """Print the password-protected key and its QR code, to keep on paper."""
    key_config = TapeKeyStore().key_config(fingerprint)
    render = paperkey_html if output_format == "html" else paperkey_text
    click.echo(render(key_config, subject), nl=False)


@key.command("restore")
@click.option("--key", "key_text", default=None, help="Key config JSON or paper key text.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file with key config JSON or paper key text ('-' for stdin).",
)
@drive_option
@password_fd_option
@output_format_option
def key_restore_command(
    key_text: str | None, key_file: Path | None, drive_name: str | None, password_fd: int | None, output_format: str
) -> None:
    """Restore a tape key from the tape in the drive (its media-set label), a key file or a paper key."""
    if key_text is not None and key_file is not None:
        raise click.UsageError("give --key or --key-file, not both")
    if key_file is not None:
        key_text = sys.stdin.read() if str(key_file) == "-" else key_file.read_text()
    store = TapeKeyStore()
    password = _password(password_fd, "Tape key password", confirm=False)
    if key_text is not None:
        fingerprint = key_restore.restore_from_text(store, key_text, password)
    else:
        drive = drive_selection.choose_drive(load_tape_config(), drive_name)
        fingerprint = restore_from_drive(store, drive, password)
    _emit_fingerprint(output_format, fingerprint)


@key.command("remove")
@click.argument("fingerprint")
@click.option("--force", is_flag=True, default=False, help="Remove it even if a media pool still encrypts with it.")
def key_remove(fingerprint: str, force: bool) -> None:
    """Remove a tape key (both copies). Tapes written with it stay unreadable until it is restored."""
    fingerprint = normalize_fingerprint(fingerprint)
    users = [
        pool.name
        for pool in load_media_pool_config().values()
        if pool.encrypt and normalize_fingerprint(pool.encrypt) == fingerprint
    ]
    if users and not force:
        # The next backup of such a pool would fail for want of the key (tapefs checks; PBS does not).
        raise click.ClickException(
            f"key {fingerprint} is used by media pool {', '.join(users)}: "
            "change the pool's encrypt setting first, or use --force"
        )
    TapeKeyStore().remove(fingerprint)
