"""plasticity (see README)."""
