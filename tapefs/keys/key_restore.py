"""Getting a tape key back into the store (docs/keys.md, "Formats"): from the key config in a tape's media-set
label, from a key file, or from paper key text; each needs the key's password. Reading the label
off a tape is a job: ``tapefs.jobs.key_from_tape``."""

from __future__ import annotations

import logging

from tapefs.datastore.crypt_config import format_fingerprint
from tapefs.datastore.errors import CryptoError
from tapefs.datastore.key_config import KeyConfig
from tapefs.keys.errors import KeyInputError, TapeKeyError
from tapefs.keys.key_store import TapeKeyStore, normalize_fingerprint, unlock_key
from tapefs.keys.paperkey import parse_key_text
from tapefs.tapeformat.labels import MediaSetLabel

log = logging.getLogger(__name__)


def restore_from_text(store: TapeKeyStore, text: str, password: bytes) -> str:
    """Key config JSON or paper key text; an existing key is refused. Returns the fingerprint."""
    key_config, from_paper = parse_key_text(text)
    try:
        key = unlock_key(key_config, password)
    except TapeKeyError as error:
        if from_paper:
            raise KeyInputError(
                f"{error}; on a paper key, a typo in the salt, data or fingerprint looks the same: check the text"
            ) from None
        raise
    return store.insert(key, key_config, force=False)


def restore_from_media_set_label(store: TapeKeyStore, label: MediaSetLabel, password: bytes) -> str:
    """The key config a tape carries in its media-set label; replaces a stored key of the same
    fingerprint, as PBS does (the tape's copy is the one the data was written with)."""
    if label.key_config is None:
        raise TapeKeyError("media does not contain any encryption key configuration")
    try:
        key_config = KeyConfig.from_json(label.key_config)
    except CryptoError as error:
        raise TapeKeyError(f"the media-set label holds a malformed key config: {error}") from None
    if key_config.fingerprint is None:
        raise TapeKeyError("the key config in the media-set label has no fingerprint")
    fingerprint = format_fingerprint(key_config.fingerprint)
    if (
        label.encryption_key_fingerprint is not None
        and normalize_fingerprint(label.encryption_key_fingerprint) != fingerprint
    ):
        raise TapeKeyError(
            f"the media-set label names key {label.encryption_key_fingerprint} but carries "
            f"the key config of {fingerprint}"
        )
    key = unlock_key(key_config, password)
    store.insert(key, key_config, force=True)
    log.info("restored tape encryption key %s from media set %s", fingerprint, label.uuid)
    return fingerprint
