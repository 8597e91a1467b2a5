"""ctibridge services layer."""
