"""synthetic (see README)."""
