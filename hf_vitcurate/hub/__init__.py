"""hub (see README)."""
