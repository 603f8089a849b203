"""Failures of the tape key commands; each message names the key by fingerprint, never by content."""

import logging

from tapefs.errors import DataDamaged, InvalidInput, NotFound, TapefsError

log = logging.getLogger(__name__)


class TapeKeyError(TapefsError):
    """A key operation that cannot be done as asked; nothing was changed."""


class KeyNotFound(NotFound, TapeKeyError):
    def __init__(self, fingerprint: str, advice: str = ""):
        super().__init__(f"tape encryption key {fingerprint} not found" + (f": {advice}" if advice else ""))
        self.fingerprint = fingerprint


class KeyExists(InvalidInput, TapeKeyError):
    def __init__(self, fingerprint: str):
        super().__init__(f"tape encryption key {fingerprint} already exists")
        self.fingerprint = fingerprint


class KeyStoreCorrupt(DataDamaged, TapeKeyError):
    """A key store file that fails its own checks (fingerprint mismatch, duplicates, bad JSON)."""


class KeyInputError(InvalidInput, TapeKeyError):
    """A key file or paper key text that cannot be read as a key config."""
