"""Scans: linear_recurrence against numpy.cumsum, a Python loop, scipy.signal.lfilter and a chunked
NumPy scan; and the three scan algorithms (Blelloch, Hillis-Steele, sequential) for add and affine.

``python -m benchmarks scans`` runs it all and (full run only) writes the
algorithm table and plot to ``docs/benchmarks/scans_algorithms.{md,png}``.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.signal

import scans
from scans import ops

from .harness import Result, compare

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


# ----------------------------------------------------------------- peers


def python_loop(a, b):
    """h[t] = a[t] * h[t-1] + b[t] in plain Python."""
    al, bl = a.tolist(), b.tolist()
    out = [0.0] * len(bl)
    h = 0.0
    for t in range(len(bl)):
        h = al[t] * h + bl[t]
        out[t] = h
    return out


def chunked_numpy(a, b, chunk=1024):
    """The chunked scan in NumPy (the alternative to numba we measured): 1-D ``a``, ``b``.

    Sequential within chunks of ``chunk`` steps, vectorized across chunks;
    then a carry pass over the chunk ends and one fix-up pass.
    """
    T = b.shape[0]
    C = math.ceil(T / chunk)
    pad = C * chunk - T
    A = np.concatenate([a, np.ones(pad)]).reshape(C, chunk).T.copy()  # (chunk, C): step k of every chunk
    B = np.concatenate([b, np.zeros(pad)]).reshape(C, chunk).T.copy()
    local = np.empty_like(B)
    cur = np.zeros(C)
    for k in range(chunk):
        cur = A[k] * cur + B[k]
        local[k] = cur
    P = np.cumprod(A, axis=0)
    carry = np.zeros(C)
    for c in range(1, C):
        carry[c] = P[-1, c - 1] * carry[c - 1] + local[-1, c - 1]
    h = local + P * carry
    return h.T.reshape(-1)[:T]


# ---------------------------------------------------------------- timing

BATCH_S = 0.05  # each timing covers about this long (several calls of a fast function)


def _calls_per_timing(fn) -> int:
    """How many calls of ``fn`` take about ``BATCH_S``: short timings on a shared machine measure
    the scheduler's time slices more than the code, so fast functions are timed in batches."""
    for _ in range(2):  # the first call may include compilation: time a second one unless it is slow anyway
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if elapsed >= BATCH_S:
            return 1
    return max(1, math.ceil(BATCH_S / max(elapsed, 1e-7)))


def paired(name, ours, peer, **kw) -> Result:
    """:func:`harness.compare` on batches of calls; the times reported are per call."""
    k_ours, k_peer = _calls_per_timing(ours), _calls_per_timing(peer)
    r = compare(
        name,
        lambda: [ours() for _ in range(k_ours)],
        lambda: [peer() for _ in range(k_peer)],
        **kw,
    )
    o, p = r.ours_median_s / k_ours, r.peer_median_s / k_peer
    return replace(r, ours_median_s=o, peer_median_s=p, ratio=o / p, params={**r.params, "calls_per_timing": [k_ours, k_peer]})


# ---------------------------------------------------------- per-call overhead


def overhead_results(quick: bool) -> list[Result]:
    """A plain 1-D ``scan(ops.add, x)`` on a short array: the cost of a call, against ``numpy.cumsum``."""
    repeats = 5 if quick else 15
    out = []
    for n, dtype in ((100, np.float64), (100, np.int32)):
        x = np.arange(n).astype(dtype)
        out.append(paired(
            f"scan(ops.add) 1-D n={n} {np.dtype(dtype).name} vs cumsum (per-call overhead)",
            lambda: scans.scan(ops.add, x), lambda: np.cumsum(x),
            ours_label="scans.scan(ops.add, x)", peer_label="numpy.cumsum(x)",
            repeats=repeats, params={"n": n, "dtype": np.dtype(dtype).name},
        ))
    return out


# ------------------------------------------------------ recurrence figures


def recurrence_results(quick: bool) -> list[Result]:
    rng = np.random.default_rng(0)
    repeats = 5 if quick else 15
    out = []
    T = 1 << 20
    a, b = rng.uniform(0.9, 1.0, T), rng.standard_normal(T)
    scans.linear_recurrence(a[:10], b[:10])  # compile / load the numba loop outside the timings
    out.append(paired(
        "linear_recurrence T=2^20 f64 vs cumsum",
        lambda: scans.linear_recurrence(a, b), lambda: np.cumsum(b),
        ours_label="scans.linear_recurrence (numba loop)", peer_label="numpy.cumsum",
        repeats=repeats, params={"T": T, "dtype": "float64"}, target="<= 3x cumsum",
    ))
    shape = (8, 64, 2048)  # (B, D, L) with axis=-1, the SSM layout; 2^20 elements
    a3, b3 = rng.uniform(0.9, 1.0, shape), rng.standard_normal(shape)
    out.append(paired(
        "linear_recurrence (8,64,2048) axis=-1 vs cumsum",
        lambda: scans.linear_recurrence(a3, b3, axis=-1), lambda: np.cumsum(b3, axis=-1),
        ours_label="scans.linear_recurrence (numba loop)", peer_label="numpy.cumsum(axis=-1)",
        repeats=repeats, params={"shape": shape, "axis": -1, "dtype": "float64"}, target="<= 3x cumsum",
    ))
    at, bt = np.ascontiguousarray(np.moveaxis(a3, -1, 0)), np.ascontiguousarray(np.moveaxis(b3, -1, 0))
    out.append(paired(
        "linear_recurrence (2048,8,64) axis=0 vs cumsum",
        lambda: scans.linear_recurrence(at, bt, axis=0), lambda: np.cumsum(bt, axis=0),
        ours_label="scans.linear_recurrence (numba loop)", peer_label="numpy.cumsum(axis=0)",
        repeats=repeats, params={"shape": at.shape, "axis": 0, "dtype": "float64"}, target="<= 3x cumsum",
    ))
    out.append(paired(
        "linear_recurrence T=2^20 vs chunked NumPy scan",
        lambda: scans.linear_recurrence(a, b), lambda: chunked_numpy(a, b),
        ours_label="numba loop (our CPU path)", peer_label="chunked NumPy scan (the alternative)",
        repeats=3 if quick else 7, params={"T": T, "chunk": 1024},
    ))
    out.append(paired(
        "linear_recurrence T=2^20 vs Blelloch reference",
        lambda: scans.linear_recurrence(a, b), lambda: scans.linear_recurrence(a, b, impl="reference"),
        ours_label="numba loop", peer_label="Blelloch scan in NumPy (the reference)",
        repeats=3 if quick else 7, params={"T": T},
    ))
    Tp = 1 << 16
    out.append(paired(
        "linear_recurrence T=2^16 vs Python loop",
        lambda: scans.linear_recurrence(a[:Tp], b[:Tp]), lambda: python_loop(a[:Tp], b[:Tp]),
        ours_label="scans.linear_recurrence", peer_label="plain Python loop",
        repeats=3 if quick else 7, params={"T": Tp},
    ))
    c = 0.95
    out.append(paired(
        "linear_recurrence constant a, T=2^20 vs lfilter",
        lambda: scans.linear_recurrence(c, b), lambda: scipy.signal.lfilter([1.0], [1.0, -c], b),
        ours_label="scans.linear_recurrence(a=0.95)", peer_label="scipy.signal.lfilter([1], [1, -a])",
        repeats=repeats, params={"T": T, "a": c},
    ))
    out.append(paired(
        "linear_recurrence constant a, (8,64,2048) axis=-1 vs lfilter",
        lambda: scans.linear_recurrence(c, b3, axis=-1), lambda: scipy.signal.lfilter([1.0], [1.0, -c], b3, axis=-1),
        ours_label="scans.linear_recurrence(a=0.95)", peer_label="scipy.signal.lfilter(axis=-1)",
        repeats=repeats, params={"shape": shape, "a": c},
    ))
    return out


# ------------------------------------------------------- algorithm table


def _median_time(fn, repeats):
    """Median time per call of ``fn``, timing batches of calls (see :func:`_calls_per_timing`)."""
    k = _calls_per_timing(fn)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(k):
            fn()
        times.append((time.perf_counter() - start) / k)
    return statistics.median(times)


SEQUENTIAL_MAX = 1 << 18  # the Python loop beyond this takes minutes and gigabytes


def algorithm_results(quick: bool) -> tuple[list[Result], list[dict]]:
    rng = np.random.default_rng(1)
    sizes = [1 << 12, 1 << 16] if quick else [1 << k for k in range(12, 23, 2)]
    rows, out = [], []
    for name in ("add", "affine"):
        op = ops.BUILTINS[name]
        for n in sizes:
            x = rng.standard_normal(n)
            elems = x if name == "add" else (rng.uniform(0.9, 1.0, n), x)
            fns = {alg: (lambda alg=alg: scans.scan(op, elems, algorithm=alg))
                   for alg in ("blelloch", "hillis_steele", "sequential", "auto")}
            reps = 3 if quick else (9 if n <= 1 << 18 else 3)
            row = {"op": name, "n": n}
            for alg, fn in fns.items():
                if alg == "sequential" and n > SEQUENTIAL_MAX:
                    row[alg] = None
                    continue
                row[alg] = _median_time(fn, 1 if alg == "sequential" and n > 1 << 14 else reps)
            rows.append(row)
            out.append(paired(
                f"scan {name} n=2^{n.bit_length() - 1}: blelloch vs hillis_steele",
                fns["blelloch"], fns["hillis_steele"], ours_label="blelloch (NumPy)", peer_label="hillis_steele (NumPy)",
                repeats=reps, params={"op": name, "n": n},
            ))
    return out, rows


def algorithm_table(rows: list[dict]) -> str:
    def ms(v):
        return "—" if v is None else f"{v * 1e3:.2f}"

    lines = [
        "| op | n | sequential (ms) | Hillis-Steele (ms) | Blelloch (ms) | auto (ms) | HS / Blelloch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['op']} | 2^{r['n'].bit_length() - 1} | {ms(r['sequential'])} | {ms(r['hillis_steele'])} | "
            f"{ms(r['blelloch'])} | {ms(r['auto'])} | {r['hillis_steele'] / r['blelloch']:.2f} |"
        )
    return "\n".join(lines)


def algorithm_plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, name in zip(axes, ("add", "affine")):
        sub = [r for r in rows if r["op"] == name]
        for alg, style in (("sequential", "o-"), ("hillis_steele", "s-"), ("blelloch", "^-"), ("auto", "d--")):
            pts = [(r["n"], r[alg]) for r in sub if r[alg] is not None]
            ax.plot([p[0] for p in pts], [p[1] * 1e3 for p in pts], style, label=alg)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"scan({name}), NumPy, float64")
        ax.set_xlabel("n")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("time (ms)")
    axes[1].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(quick: bool = False) -> list[Result]:
    results = overhead_results(quick) + recurrence_results(quick)
    alg_results, rows = algorithm_results(quick)
    results += alg_results
    table = algorithm_table(rows)
    print(table)
    if not quick:
        (DOCS / "scans_algorithms.md").parent.mkdir(parents=True, exist_ok=True)
        (DOCS / "scans_algorithms.md").write_text(table + "\n")
        algorithm_plot(rows, DOCS / "scans_algorithms.png")
    return results
