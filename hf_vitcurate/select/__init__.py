"""select (see README)."""
