"""The same seeds give the same results, point for point, in this process, in a process pool and on Dask
(a real LocalCluster of worker processes); workers pin their thread pools so workers x threads <= cores."""

import pytest

from experiments import InlineExecutor, ProcessExecutor, read_json, run_experiment
from experiments.executors import cpu_count

TINY_RULES = {"samples": 200, "stdp": False, "rules": ["oja", "bcm"], "streams": ["gaussian", "two-patterns"]}


def _results(run) -> dict:
    """Every point's results by key: the file's text, or without the thread counts where the test study reports them."""
    out = {}
    for p in (run / "points").iterdir():
        if p.is_dir() and not p.name.startswith("."):
            r = read_json(p / "results.json")
            out[p.name] = (p / "results.json").read_text() if r.pop("threads", None) is None else r
    return out


def _same_everywhere(tmp_path, executor):
    for name, kw in (("_t-sweep", {"seeds": [0, 1, 2], "sweep": {"x": [0.5, 2.0]}}),
                     ("compare-rules", {"seeds": [0, 1], "params": TINY_RULES, "quick": True})):
        here = run_experiment(name, out=tmp_path / "inline", executor=InlineExecutor(), **kw)
        there = run_experiment(name, out=tmp_path / executor.kind, executor=executor, **kw)
        a, b = _results(here), _results(there)
        assert a.keys() == b.keys() and len(a) == (6 if name == "_t-sweep" else 2)
        assert a == b  # same numbers; compare-rules' files byte for byte
    return [read_json(p / "results.json")["threads"] for p in (tmp_path / executor.kind).glob("_t-sweep/*/points/*")
            if p.is_dir() and not p.name.startswith(".")]


def test_process_pool_equals_in_process(tmp_path):
    with ProcessExecutor(2) as pool:
        assert pool.describe() == {"kind": "process-pool", "workers": 2, "threads_per_worker": max(1, cpu_count() // 2)}
        threads = _same_everywhere(tmp_path, pool)
    assert threads and all(2 * t["numba"] <= max(2, cpu_count()) and 2 * t["pools"] <= max(2, cpu_count())
                           for t in threads)


def test_dask_local_cluster_equals_in_process(tmp_path):
    pytest.importorskip("distributed")
    from experiments import DaskExecutor

    with DaskExecutor(local=2) as dask:
        assert dask.describe()["workers"] == 2
        threads = _same_everywhere(tmp_path, dask)
    assert threads and all(2 * t["numba"] <= max(2, cpu_count()) and 2 * t["pools"] <= max(2, cpu_count())
                           for t in threads)
