"""pxar archives (v1 read/write, v2 read), pcat1 catalogs, random access and safe extraction."""
