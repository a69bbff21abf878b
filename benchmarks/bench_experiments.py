"""A 64-point compare-rules sweep on the three executors, and each executor's per-point overhead.

* Wall time of ``neuro run compare-rules --seeds 0-31 --sweep units=2,4`` (64
  points) in this process vs ``--workers 2`` vs ``--dask-local 2``, each run
  as a user runs it: the executor (pool or cluster) started inside the timing.
  The points are small (``samples``/``stdp_ms`` below, a fraction of the
  quick settings) so the sweep fits a shared 2-core machine.
* Per-point overhead: the cost of one more point of a study that does nothing,
  the slope of wall time between a short and a long sweep on an executor
  already started (so it counts the task's trip, the atomic writes and the
  bookkeeping, not the start-up). Targets: under 50 ms per point for the
  process pool, under 200 ms for Dask.
  The start-up (pool or cluster started, first points run) is reported
  beside it (``startup_s``).
* Oversubscription: every pool and Dask point records the numba and
  BLAS/OpenMP thread counts it ran with; workers x threads must not exceed the
  cores.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from experiments import DaskExecutor, InlineExecutor, ProcessExecutor, experiment, read_json, run_experiment
from experiments.executors import cpu_count

from .harness import Result, compare, machine

SWEEP = {"seeds": list(range(32)), "sweep": {"units": [2, 4]}, "quick": True}
POINT = {"samples": 300, "stdp_ms": 500.0}
POINT_QUICK = {"samples": 100, "stdp_ms": 200.0, "streams": ["gaussian", "two-patterns"]}


@experiment("_bench-noop", "does nothing: measures an executor's per-point overhead")
def noop(ctx) -> dict:
    return {"seed": ctx.seed}


def _sweep(make_executor, params: dict, durations: list) -> float:
    """Wall time of the 64-point sweep, the executor started and stopped inside it; checks the thread pinning
    and appends the median time of a point inside its worker to ``durations``."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        with make_executor() as executor:
            run = run_experiment("compare-rules", out=out, params=params, executor=executor, **SWEEP)
        wall = time.perf_counter() - start
        _check_threads(run, executor)
        durations.append(statistics.median(read_json(p)["duration_s"] for p in run.glob("points/*/point.json")))
    return wall


def _check_threads(run, executor) -> None:
    if executor.kind == "in-process":
        return
    for point in (run / "points").glob("*/point.json"):
        threads = read_json(point)["worker"]["threads"]
        worst = max(threads.values())
        if executor.workers * worst > max(cpu_count(), executor.workers):
            raise AssertionError(f"oversubscribed: {executor.workers} workers x {worst} threads > {cpu_count()} cores")


def _overhead(executor, n_short: int, n_long: int) -> float:
    """Seconds per extra no-op point on a started ``executor``: (T(long) - T(short)) / (long - short)."""
    times = []
    for n in (n_short, n_long):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            run_experiment("_bench-noop", out=out, seeds=list(range(n)), executor=executor)
            times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / (n_long - n_short)


def _overhead_results(quick: bool) -> list[Result]:
    n_short, n_long = (8, 40) if quick else (16, 144)
    inline = _overhead(InlineExecutor(), n_short, n_long)
    results = []
    for label, make, target in (("process pool (2 workers)", lambda: ProcessExecutor(2), "< 50 ms per point"),
                                ("Dask LocalCluster (2 workers)", lambda: DaskExecutor(local=2), "< 200 ms per point")):
        start = time.perf_counter()
        with make() as executor:
            _overhead(executor, 2, 4)  # warm up: workers started, modules imported
            startup = time.perf_counter() - start
            per_point = _overhead(executor, n_short, n_long)
        results.append(Result(f"experiments: per-point overhead, {label}", label, "in-process", per_point, inline,
                              per_point / inline, 1, {"points": [n_short, n_long], "startup_s": round(startup, 2)}, target,
                              machine(),
                              time.strftime("%Y-%m-%d", time.gmtime())))
    return results


def run(quick: bool = False) -> list[Result]:
    params = POINT_QUICK if quick else POINT
    repeats = 1 if quick else 2
    with tempfile.TemporaryDirectory() as out:  # compile this process's kernels first: in-process timed at its best
        run_experiment("compare-rules", out=out, quick=True, params=params)
    results = []
    for label, make in (("--workers 2", lambda: ProcessExecutor(2)), ("--dask-local 2", lambda: DaskExecutor(local=2))):
        ours, peer = [], []
        result = compare(f"experiments: 64-point compare-rules sweep, {label} vs in-process",
                         lambda: _sweep(make, params, ours), lambda: _sweep(InlineExecutor, params, peer),
                         ours_label=label, peer_label="in-process", repeats=repeats, warmup=0,
                         params={"points": 64, **params}, target="report (2 cores)")
        # the time a point takes inside its worker: equal on an idle machine, longer where the cores are shared
        result.params.update(point_median_s={label: statistics.median(ours), "in-process": statistics.median(peer)})
        results.append(result)
    return results + _overhead_results(quick)
