"""ann (see README)."""
