"""metrics (see README)."""
