"""stages (see README)."""
