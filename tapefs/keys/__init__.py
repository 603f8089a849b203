"""Tape encryption keys (docs/keys.md): the key store, the per-media-set drive key,
paper keys and restoring a key from a tape label, a key file or a paper key."""
