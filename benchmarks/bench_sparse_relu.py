"""Fused sparse ReLU (CPU fast path) vs the two-pass NumPy reference."""

from __future__ import annotations

import numpy as np

from neuro.kernels import call

from .harness import Result, compare


def run(quick: bool = False) -> list[Result]:
    rng = np.random.default_rng(0)
    results = []
    for n in ([1 << 20] if quick else [1 << 16, 1 << 20, 1 << 24]):
        x = rng.standard_normal(n)
        results.append(
            compare(
                f"sparse_relu n={n}",
                lambda: call("sparse_relu", x, impl="cpu"),
                lambda: call("sparse_relu", x, impl="reference"),
                ours_label="cpu fast path",
                peer_label="numpy reference (where + count_nonzero)",
                repeats=5 if quick else 11,
                params={"n": n, "dtype": "float64"},
            )
        )
    return results
