"""scans (see README)."""
