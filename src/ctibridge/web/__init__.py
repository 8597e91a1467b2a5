"""ctibridge web layer."""
