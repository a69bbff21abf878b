"""The same seeds give the same results, point for point, in this process, in a process pool and on Dask
(a real LocalCluster of worker processes); workers pin their thread pools so workers x threads <= cores."""

import socket

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


def test_dask_cluster_equals_in_process(tmp_path):
    """An existing cluster (a LocalCluster of 2 worker processes) reached by its scheduler address."""
    distributed = pytest.importorskip("distributed")
    from experiments import DaskExecutor

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with DaskExecutor(scheduler=cluster.scheduler_address) as dask:
            assert dask.describe()["workers"] == 2
            assert dask.threads_by_host == {socket.gethostname(): max(1, cpu_count() // 2)}
            threads = _same_everywhere(tmp_path, dask)
    assert threads and all(2 * t["numba"] <= max(2, cpu_count()) and 2 * t["pools"] <= max(2, cpu_count())
                           for t in threads)


def test_dask_local_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("distributed")
    from experiments import cli

    argv = ["run", "_t-loose", "--seeds", "0-2", "--dask-local", "1", "--out", str(tmp_path), "-q"]
    assert cli.main(argv) == 0
    run = capsys.readouterr().out.splitlines()[0].split("results written to ")[1].strip()
    config = read_json(f"{run}/config.json")
    assert config["sessions"][0]["executor"]["kind"] == "dask" and config["sessions"][0]["executor"]["workers"] == 1
    assert sorted(read_json(f"{run}/{p['dir']}/results.json")["seed"] for p in config["points"]) == [0, 1, 2]
