"""The runner: sweeps resume after a failure, a kill or Ctrl-C with nothing lost and nothing repeated; result
folders are atomic, collision-free and cleaned of dead runs' staging folders; JSON is strict."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import ExperimentFailed, read_json, run_experiment
from experiments.folders import STAGING, clean_stale_staging
from experiments.runner import plan

HERE = Path(__file__).parent


def _seeds_computed(log: Path) -> list[int]:
    return [int(line.split()[0]) for line in log.read_text().splitlines()] if log.exists() else []


def _points(run: Path) -> dict[int, Path]:
    return {read_json(p / "point.json")["seed"]: p for p in (run / "points").iterdir()
            if p.is_dir() and not p.name.startswith(".")}


def _files(root: Path) -> set:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_failed_point_is_recorded_and_the_same_command_resumes_only_what_is_missing(tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    out = tmp_path / "out"
    monkeypatch.setenv("NEURO_TEST_LOG", str(log))
    monkeypatch.setenv("NEURO_TEST_FAIL", "raise:2")
    with pytest.raises(ExperimentFailed, match="1 of 4 points failed; first: ValueError: planned failure at seed 2") as info:
        run_experiment("_t-sweep", out=out, seeds=[0, 1, 2, 3])
    run = info.value.run_dir
    assert sorted(_points(run)) == [0, 1, 3] and _seeds_computed(log) == [0, 1, 3]  # the sweep went on
    failed = read_json(next((run / "points").glob("*.failed.json")))
    assert failed["seed"] == 2 and "planned failure" in failed["traceback"]
    assert "1 not done" in (run / "report.md").read_text()
    monkeypatch.delenv("NEURO_TEST_FAIL")
    before = {s: (p / "results.json").read_bytes() for s, p in _points(run).items()}
    again = run_experiment("_t-sweep", out=out, seeds=[0, 1, 2, 3])  # the same call: resumes the unfinished run
    assert again == run and _seeds_computed(log) == [0, 1, 3, 2]  # only the failed point ran again
    assert not list((run / "points").glob("*.failed.json"))
    assert {s: (p / "results.json").read_bytes() for s, p in _points(run).items() if s != 2} == before
    assert len(read_json(run / "config.json")["sessions"]) == 2
    assert _files(out) == {Path("_t-sweep")} | {Path("_t-sweep") / p for p in _files(out / "_t-sweep")}
    assert [p.name for p in (out / "_t-sweep").iterdir()] == [run.name]  # nothing else touched
    # a finished run is not reused: the same call again makes a new folder
    third = run_experiment("_t-sweep", out=out, seeds=[0, 1, 2, 3])
    assert third != run and len(_seeds_computed(log)) == 8


def test_truncated_or_missing_point_files_are_redone(tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    monkeypatch.setenv("NEURO_TEST_LOG", str(log))
    run = run_experiment("_t-sweep", out=tmp_path / "out", seeds=[0, 1, 2])
    points = _points(run)
    good = (points[0] / "results.json").read_bytes()
    (points[0] / "results.json").write_bytes(good[: len(good) // 2])  # truncated
    (points[1] / "point.json").unlink()  # partial
    (points[2] / "results.json").write_text((points[2] / "results.json").read_text().replace("true", "false"))
    again = run_experiment("_t-sweep", out=tmp_path / "out", seeds=[0, 1, 2], resume=run)
    assert again == run and sorted(_seeds_computed(log)[3:]) == [0, 1, 2]
    assert (points[0] / "results.json").read_bytes() == good
    assert read_json(points[2] / "results.json")["ok"] is True


def test_ctrl_c_keeps_finished_points_and_leaves_no_staging(tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    monkeypatch.setenv("NEURO_TEST_LOG", str(log))
    monkeypatch.setenv("NEURO_TEST_FAIL", "interrupt:2")
    with pytest.raises(KeyboardInterrupt):
        run_experiment("_t-sweep", out=tmp_path / "out", seeds=[0, 1, 2, 3])
    (run,) = (tmp_path / "out" / "_t-sweep").iterdir()
    assert sorted(_points(run)) == [0, 1] and not list((run / "points").glob(STAGING + "*"))
    monkeypatch.delenv("NEURO_TEST_FAIL")
    assert run_experiment("_t-sweep", out=tmp_path / "out", seeds=[0, 1, 2, 3]) == run
    assert _seeds_computed(log) == [0, 1, 2, 3]


def test_killed_worker_then_resume_runs_only_the_missing_points(tmp_path, monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    from experiments import ProcessExecutor

    log = tmp_path / "log.txt"
    out = tmp_path / "out"
    monkeypatch.setenv("NEURO_TEST_LOG", str(log))
    monkeypatch.setenv("NEURO_TEST_FAIL", "kill:2")  # SIGKILL inside the point: its staging folder stays behind
    with ProcessExecutor(1) as pool, pytest.raises(BrokenProcessPool):
        run_experiment("_t-sweep", out=out, seeds=[0, 1, 2, 3], executor=pool)
    (run,) = (out / "_t-sweep").iterdir()
    done_first = set(_points(run))
    assert done_first == {0, 1}
    assert len(list((run / "points").glob(STAGING + "*"))) == 1
    monkeypatch.delenv("NEURO_TEST_FAIL")
    computed = len(_seeds_computed(log))
    assert run_experiment("_t-sweep", out=out, seeds=[0, 1, 2, 3]) == run
    assert sorted(_seeds_computed(log)[computed:]) == [2, 3]  # nothing finished was repeated
    assert not list((run / "points").glob(STAGING + "*"))  # the dead worker's staging folder is gone


def test_sigterm_leaves_staging_that_the_next_run_removes(tmp_path):
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import importlib.util, os, sys
        spec = importlib.util.spec_from_file_location("studies_for_test", {str(HERE / "conftest.py")!r})
        module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
        from experiments import run_experiment
        os.environ["NEURO_TEST_FAIL"] = "term:0"
        run_experiment("_t-sweep", out={str(out)!r}, seed=0)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    (stale,) = (out / "_t-sweep").iterdir()
    assert stale.name.startswith(STAGING) and (stale / "note.txt").exists()
    mine = out / "_t-sweep" / f"{STAGING}{os.getpid()}.abcd.{os.uname().nodename}"
    mine.mkdir()  # a staging folder of a live process (this one) is left alone
    folder = run_experiment("_t-sweep", out=out, seed=1)
    assert sorted(p.name for p in (out / "_t-sweep").iterdir()) == sorted([folder.name, mine.name])
    assert clean_stale_staging(out / "_t-sweep") == []


def test_eight_concurrent_runs_never_lose_a_result(tmp_path):
    from experiments import get

    barrier = get("_t-barrier").fn.__globals__["BARRIER"]  # the points wait for each other, then all finish at once
    folders, errors = [], []

    def one(seed):
        try:
            folders.append((seed, run_experiment("_t-barrier", out=tmp_path, seed=seed)))
        except Exception as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)

    try:
        for round_ in range(5):
            barrier[:] = [threading.Barrier(8)]
            threads = [threading.Thread(target=one, args=(8 * round_ + k,)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
    finally:
        barrier.clear()
    assert errors == [] and len(folders) == 40 and len({f for _, f in folders}) == 40
    for seed, folder in folders:
        assert read_json(folder / "results.json")["seed"] == seed
    assert sorted(p.name for p in (tmp_path / "_t-barrier").iterdir()) == sorted(f.name for _, f in folders)


def test_strict_json_for_non_finite_numbers(tmp_path):
    folder = run_experiment("_t-nonfinite", out=tmp_path)

    def reject(name):
        raise AssertionError(f"non-standard constant {name}")

    for name in ("results.json", "config.json", "summary.json", "point.json"):
        json.loads((folder / name).read_text(), parse_constant=reject)
    raw = json.loads((folder / "results.json").read_text())
    assert raw == {"py_nan": "nan", "np_nan": "nan", "f32_inf": "inf", "neg_inf": "-inf",
                   "array": [1.0, "nan", "-inf"], "finite": 1.5}
    back = read_json(folder / "results.json")
    assert np.isnan(back["py_nan"]) and back["f32_inf"] == np.inf and back["array"][2] == -np.inf
    summary = read_json(folder / "summary.json")["groups"][0]["metrics"]
    assert np.isnan(summary["np_nan"]["mean"]) and summary["finite"]["mean"] == 1.5


def test_schema_less_study_takes_params_and_sweeps(tmp_path):
    run = run_experiment("_t-loose", out=tmp_path, seeds=[4, 5], params={"a": "3"}, sweep={"b": ["x", "2"]}, quick=True)
    results = sorted((read_json(p / "results.json") for p in (run / "points").iterdir() if p.is_dir()),
                     key=lambda r: (str(r["params"]["b"]), r["seed"]))
    assert [(r["seed"], r["params"]) for r in results] == [
        (4, {"a": 3, "b": 2}), (5, {"a": 3, "b": 2}), (4, {"a": 3, "b": "x"}), (5, {"a": 3, "b": "x"})]
    assert all(r["quick"] for r in results)


def test_points_are_keyed_by_content():
    a = plan("_t-sweep", seeds=[0, 1], values={"x": "2"})
    b = plan("_t-sweep", seeds=[1, 0], values={"x": 2.0})
    assert {p["key"] for p in a.points} == {p["key"] for p in b.points}
    assert a.spec_hash != b.spec_hash  # a different grid order is a different run, with the same points
    c = plan("_t-sweep", seeds=[0], values={"x": 2.0}, quick=True)
    assert c.points[0]["key"] not in {p["key"] for p in a.points}


def test_resume_checks_the_config_and_a_finished_one_point_run_has_nothing_to_do(tmp_path, monkeypatch):
    from experiments import ConfigError

    log = tmp_path / "log.txt"
    monkeypatch.setenv("NEURO_TEST_LOG", str(log))
    sweep = run_experiment("_t-sweep", out=tmp_path / "out", seeds=[0, 1])
    with pytest.raises(ConfigError, match="was run with a different study, config or grid"):
        run_experiment("_t-sweep", out=tmp_path / "out", seeds=[0, 1], params={"x": 2.0}, resume=sweep)
    one = run_experiment("_t-sweep", out=tmp_path / "out", seed=5)
    assert run_experiment("_t-sweep", out=tmp_path / "out", seed=5, resume=one) == one
    assert _seeds_computed(log) == [0, 1, 5]


def test_library_calls_print_nothing_and_note_kernel_compilation_in_the_log(tmp_path, capfd, caplog, monkeypatch):
    from experiments import experiment, runner

    monkeypatch.setitem(runner._NOTICE, "told", False)  # once per process: earlier tests may have been told

    @experiment("_t-jit", "compiles a fresh numba function in its point")
    def jit_study(ctx):
        import numba

        @numba.njit
        def plus(x):
            return x + 1

        return {"value": plus(ctx.seed)}

    with caplog.at_level("INFO", logger="neuro"):
        run_experiment("_t-jit", out=tmp_path, seeds=[0, 1])
    assert capfd.readouterr() == ("", "")
    notices = [r for r in caplog.records if "compiling numba kernels" in r.getMessage()]
    assert len(notices) == 1 and notices[0].name == "neuro.experiments"
    caplog.clear()
    with caplog.at_level("INFO", logger="neuro"):  # a later run in the same process (as the "all" study's) is quiet
        run_experiment("_t-jit", out=tmp_path, seeds=[2], new=True)
    assert not [r for r in caplog.records if "compiling numba kernels" in r.getMessage()]


def test_commit_takes_the_next_free_name_and_never_replaces_a_folder(tmp_path):
    from experiments.folders import commit_dir, mkdir_unique

    taken = tmp_path / "20260101-000000"
    taken.mkdir()
    (taken / "results.json").write_text("{}")
    staging = tmp_path / ".staging.1.ab.host"
    staging.mkdir()
    (staging / "results.json").write_text('{"new": 1}')
    assert commit_dir(staging, tmp_path, taken.name) == tmp_path / "20260101-000000-1"
    assert (taken / "results.json").read_text() == "{}" and not staging.exists()
    assert mkdir_unique(tmp_path, taken.name) == tmp_path / "20260101-000000-2"
