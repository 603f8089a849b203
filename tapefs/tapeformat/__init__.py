"""PBS's on-tape format: 256 KiB blocks, content headers, labels, chunk, snapshot and catalog
archives, and the binary media catalog (`.log`). Chunk blobs and pxar streams are opaque bytes here."""
