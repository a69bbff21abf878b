"""``gather_matmul`` (CPU fast path) vs the dense product ``h @ W_t``, F = 4096, D = 1024, float32.

``h`` has a given fraction of exact zeros (the same positions in every row of
a batch, so the union of active inputs has that sparsity too). Targets, B = 1:
>= 5x faster at 90% sparsity and >= 12x at 97% (ideal 10x and 33x).
``--quick`` times B = 1 at 90% and 97% only.

Two cache states: ``warm`` (W_t stays in the 32 MiB L3 between calls, as in a
loop over one layer) and ``cold`` (a 64 MiB buffer is written before every
timed call, untimed: the weights come from memory, as for one token passing
through a model much larger than the cache). Each on one thread (BLAS and
numba) and with the default threads.
"""

from __future__ import annotations

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from neuro.kernels import call

from .harness import Result, compare

F, D = 4096, 1024
TARGETS = {0.9: ">= 5x faster (ratio <= 0.2)", 0.97: ">= 12x faster (ratio <= 0.083)"}


def _inputs(batch: int, sparsity: float, rng):
    w_t = rng.standard_normal((F, D)).astype(np.float32)
    keep = rng.random(F) >= sparsity
    h = (rng.standard_normal((batch, F)) * keep).astype(np.float32)
    return (h[0] if batch == 1 else h), w_t


_JUNK = None


def _evict_caches() -> None:
    global _JUNK
    if _JUNK is None:
        _JUNK = np.zeros(64 << 20, dtype=np.uint8)
    _JUNK += 1


def _case(batch, sparsity, threads, cold, repeats, rng) -> Result:
    h, w_t = _inputs(batch, sparsity, rng)
    label = ("default threads" if threads is None else f"{threads} thread") + (", cold cache" if cold else ", warm")
    return compare(
        f"gather_matmul B={batch} sparsity={sparsity:.2f} ({label})",
        lambda: call("gather_matmul", h, w_t, impl="cpu"),
        lambda: h @ w_t,
        ours_label="gather_matmul cpu",
        peer_label="dense h @ W_t (BLAS)",
        repeats=repeats,
        warmup=3,
        params={"F": F, "D": D, "B": batch, "sparsity": sparsity, "dtype": "float32", "threads": threads or "default",
                "cache": "cold" if cold else "warm"},
        target=TARGETS.get(sparsity, "") if batch == 1 else "",
        setup=_evict_caches if cold else None,
    )


def run(quick: bool = False, threads_options=(1, None)) -> list[Result]:
    rng = np.random.default_rng(0)
    cases = [(1, 0.9), (1, 0.97)] if quick else [
        (b, s) for b in (1, 8) for s in (0.0, 0.5, 0.7, 0.9, 0.95, 0.97, 0.99)]
    results = []
    default_numba = numba.get_num_threads()
    for threads in ((1,) if quick else threads_options):
        numba.set_num_threads(default_numba if threads is None else threads)
        with threadpool_limits(limits=threads, user_api="blas"):
            for cold in (False, True):
                for batch, sparsity in cases:
                    results.append(_case(batch, sparsity, threads, cold, 21 if quick else 41, rng))
    numba.set_num_threads(default_numba)
    return results
