"""ctibridge bus layer."""
