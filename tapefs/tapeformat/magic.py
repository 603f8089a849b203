"""The 8-byte magics of PBS's tape format: each is the first 8 bytes of SHA-256 of its text
(docs/tape-format.md). Kept as literals so a typo in a text cannot silently change the format; the tests
recompute every one."""

BLOCK_HEADER = bytes.fromhex("dcbdafcaeba0a528")  # Proxmox Tape Block Header v1.0
CONTENT_HEADER = bytes.fromhex("63ee149fcdf29b0c")  # Proxmox Backup Content Header v1.0
MEDIA_LABEL = bytes.fromhex("2a05bf3cb030aa39")  # Proxmox Backup Tape Label v1.0
MEDIA_SET_LABEL = bytes.fromhex("086063f92f9753d8")  # Proxmox Backup MediaSet Label v1.0
CHUNK_ARCHIVE_1_0 = bytes.fromhex("3eada75f314c066e")  # Proxmox Backup Chunk Archive v1.0 (rejected)
CHUNK_ARCHIVE_1_1 = bytes.fromhex("6d31636dd70283bf")  # Proxmox Backup Chunk Archive v1.1
CHUNK_ARCHIVE_ENTRY = bytes.fromhex("48576df2de428fdc")  # Proxmox Backup Chunk Archive Entry v1.0
SNAPSHOT_ARCHIVE_1_0 = bytes.fromhex("09b6021f7de87285")  # Proxmox Backup Snapshot Archive v1.0 (rejected)
SNAPSHOT_ARCHIVE_1_1 = bytes.fromhex("da1615d011e29a62")  # Proxmox Backup Snapshot Archive v1.1
SNAPSHOT_ARCHIVE_1_2 = bytes.fromhex("6210369bba10331d")  # Proxmox Backup Snapshot Archive v1.2
CATALOG_ARCHIVE_1_0 = bytes.fromhex("b7cfc7259e991e73")  # Proxmox Backup Catalog Archive v1.0
CATALOG_ARCHIVE_1_1 = bytes.fromhex("b3ec71f0adec0260")  # Proxmox Backup Catalog Archive v1.1
MEDIA_CATALOG_1_0 = bytes.fromhex("dd1da4013b451328")  # Proxmox Backup Media Catalog v1.0 (rejected)
MEDIA_CATALOG_1_1 = bytes.fromhex("4c8ee8c120a88971")  # Proxmox Backup Media Catalog v1.1

#: Text hashed for each magic, for the tests and for `debug scan` style listings.
TEXTS = {
    BLOCK_HEADER: "Proxmox Tape Block Header v1.0",
    CONTENT_HEADER: "Proxmox Backup Content Header v1.0",
    MEDIA_LABEL: "Proxmox Backup Tape Label v1.0",
    MEDIA_SET_LABEL: "Proxmox Backup MediaSet Label v1.0",
    CHUNK_ARCHIVE_1_0: "Proxmox Backup Chunk Archive v1.0",
    CHUNK_ARCHIVE_1_1: "Proxmox Backup Chunk Archive v1.1",
    CHUNK_ARCHIVE_ENTRY: "Proxmox Backup Chunk Archive Entry v1.0",
    SNAPSHOT_ARCHIVE_1_0: "Proxmox Backup Snapshot Archive v1.0",
    SNAPSHOT_ARCHIVE_1_1: "Proxmox Backup Snapshot Archive v1.1",
    SNAPSHOT_ARCHIVE_1_2: "Proxmox Backup Snapshot Archive v1.2",
    CATALOG_ARCHIVE_1_0: "Proxmox Backup Catalog Archive v1.0",
    CATALOG_ARCHIVE_1_1: "Proxmox Backup Catalog Archive v1.1",
    MEDIA_CATALOG_1_0: "Proxmox Backup Media Catalog v1.0",
    MEDIA_CATALOG_1_1: "Proxmox Backup Media Catalog v1.1",
}
