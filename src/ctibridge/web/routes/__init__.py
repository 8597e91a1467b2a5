"""ctibridge web/routes layer."""
