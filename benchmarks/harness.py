"""Time one of our functions against a peer's in the same process.

The two are run alternately (ours, peer, ours, peer, ...) so that machine
noise hits both alike; we report median times and the ratio
``ours / peer`` (below 1 means we are faster).
"""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from experiments.timing import alternate

__all__ = ["Result", "compare", "machine", "median_time", "write_jsonl"]


@dataclass
class Result:
    name: str
    ours: str
    peer: str
    ours_median_s: float
    peer_median_s: float
    ratio: float  # ours / peer: < 1 means we are faster
    repeats: int
    params: dict = field(default_factory=dict)
    target: str = ""
    machine: str = ""
    date: str = ""
    ours_range_s: tuple = ()  # (min, max) over the repeats
    peer_range_s: tuple = ()
    ratio_range: tuple = ()  # (min, max) of ours / peer over the alternated pairs

    def line(self) -> str:
        verdict = f"{1 / self.ratio:.2f}x faster" if self.ratio < 1 else f"{self.ratio:.2f}x slower"
        target = f"  [target: {self.target}]" if self.target else ""
        spread = lambda r: f" [{r[0] * 1e3:.1f}-{r[1] * 1e3:.1f}]" if r else ""  # noqa: E731
        return (
            f"{self.name}: {self.ours} {self.ours_median_s * 1e3:.3f} ms{spread(self.ours_range_s)} vs {self.peer} "
            f"{self.peer_median_s * 1e3:.3f} ms{spread(self.peer_range_s)} -> ratio {self.ratio:.3f}"
            + (f" (pairs {self.ratio_range[0]:.2f}-{self.ratio_range[1]:.2f})" if self.ratio_range else "")
            + f" ({verdict}){target}"
        )


def machine() -> str:
    """A one-line description of this machine."""
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of ``repeats`` calls of ``fn()`` (no warm-up)."""
    return statistics.median(alternate({"fn": fn}, repeats, warmup=0)["fn"])


def compare(
    name: str,
    ours: Callable[[], object],
    peer: Callable[[], object],
    *,
    ours_label: str = "ours",
    peer_label: str = "peer",
    repeats: int = 7,
    warmup: int = 1,
    params: dict | None = None,
    target: str = "",
    setup: Callable[[], object] | None = None,
) -> Result:
    """Median (and min, max) wall time of ``ours()`` and ``peer()``, run alternately ``repeats`` times each.

    ``setup()``, if given, runs before every timed call, untimed (e.g. to evict the caches).
    """
    times = alternate({"ours": ours, "peer": peer}, repeats, warmup=warmup, setup=setup)
    t_ours, t_peer = times["ours"], times["peer"]
    mo, mp = statistics.median(t_ours), statistics.median(t_peer)
    return Result(
        name, ours_label, peer_label, mo, mp, mo / mp, repeats, params or {}, target, machine(),
        datetime.now(timezone.utc).strftime("%Y-%m-%d"), (min(t_ours), max(t_ours)), (min(t_peer), max(t_peer)),
        (min(a / b for a, b in zip(t_ours, t_peer)), max(a / b for a, b in zip(t_ours, t_peer))),
    )


def write_jsonl(results: list[Result], path: str | Path) -> None:
    """Append one JSON line per result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for r in results:
            fh.write(json.dumps(asdict(r)) + "\n")
