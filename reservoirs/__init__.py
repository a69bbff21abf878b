"""reservoirs (see README)."""
