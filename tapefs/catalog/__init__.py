"""The media catalog: which snapshot and which chunk is where on which tape (SQLite; docs/catalog-formats.md)."""
