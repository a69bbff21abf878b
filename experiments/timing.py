"""Alternated wall-clock timing: the one loop behind the benchmarks and the timing studies.

The functions run in turn (a, b, c, a, b, c, ...) so that machine noise hits
them alike; read the medians, or ratios of them, never one absolute time.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["alternate"]


def alternate(fns: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1,
              setup: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """Wall times (s) of each function of ``fns`` (name -> callable), run in turn ``repeats`` times.

    ``warmup`` untimed rounds come first; ``setup()``, if given, runs before
    every timed call, untimed (e.g. to evict the caches).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if setup is not None:
                setup()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
