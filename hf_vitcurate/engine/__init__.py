"""engine (see README)."""
