"""formats (see README)."""
