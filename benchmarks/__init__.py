"""Benchmarks: our code against a peer in the same process. See ``harness.py``."""
