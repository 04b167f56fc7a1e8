"""models (see README)."""
