"""Running an experiment: a grid of points, each written atomically, resumable, on any executor.

A run is the grid ``seeds x sweep axes`` of one study with one base config.
Each point is keyed by a hash of its content (study, quick, seed, resolved
config) and computed in a hidden staging folder named for its process
(``.staging.<pid>.<nonce>.<host>``), then renamed into place, so a point's
folder is either complete or absent.

Folders::

    <out>/<name>/<timestamp>/           one point (the default: one seed, no sweep)
        config.json  results.json  point.json  <the study's files>
        summary.json  summary.csv  figures/  report.md
    <out>/<name>/<timestamp>/           a sweep
        config.json  summary.json  summary.csv  figures/  report.md
        points/<key>/results.json  points/<key>/point.json  points/<key>/<the study's files>
        points/<key>.failed.json    a failed point: its error and traceback

A one-point run is staged whole and renamed when finished, so a failed one
leaves nothing behind. A sweep's folder exists from the start and keeps the
finished points: running the same command again resumes the newest
unfinished run with the same config (or ``resume=RUN_DIR``), skipping the
finished points and redoing failed, missing or corrupt ones. Staging folders
left by killed processes (SIGTERM, SIGKILL) are removed by the next run into
the same place, once their process is gone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import config as cfg
from .config import ConfigError
from .executors import Executor, InlineExecutor, pinned_threads, thread_counts
from .folders import clean_stale_staging, commit_dir, file_digest, mkdir_unique, point_valid, replace_dir, staging_name
from .jsonio import read_json, to_jsonable, write_json
from .registry import Context, get

__all__ = ["Plan", "RunOutcome", "plan", "execute", "run_experiment", "run_point", "ExperimentFailed"]

log = logging.getLogger("neuro.experiments")

class ExperimentFailed(RuntimeError):
    """Some points of a sweep failed (their tracebacks are in ``<run>/points/<key>.failed.json``)."""

    def __init__(self, message: str, run_dir: Path | None, failed: list[dict]):
        super().__init__(message)
        self.run_dir, self.failed = run_dir, failed


# ------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Plan:
    """A resolved run: the study, its base config, the grid and its points (validated, nothing written yet)."""

    name: str
    quick: bool
    base: dict
    axes: dict
    seeds: list
    points: list = field(default_factory=list)  # dicts: key, seed, overrides, config

    @property
    def spec(self) -> dict:
        return {"experiment": self.name, "quick": self.quick, "base": self.base, "axes": self.axes, "seeds": self.seeds}

    @property
    def spec_hash(self) -> str:
        return _hash(self.spec)


def _hash(data: Any) -> str:
    text = json.dumps(to_jsonable(data), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(name: str, *, quick: bool = False, seeds: list[int] | None = None, seed: int = 0,
         values: dict | None = None, axes: dict[str, list] | None = None) -> Plan:
    """Resolve and validate a run: ``values`` override the defaults (or ``quick()``), ``axes`` are swept.

    Raises ``KeyError`` for an unknown study and :class:`ConfigError` (naming the key) for bad values.
    """
    if not isinstance(quick, bool):
        raise ConfigError(f"quick must be True or False, got {quick!r}")
    seeds = [seed] if seeds is None else list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seed must be a non-negative int, got {s!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds!r}")
    exp = get(name)
    values = dict(values or {})
    axes = {k: [cfg.coerce_values(exp.config, {k: v})[k] for v in vals] for k, vals in (axes or {}).items()}
    base = cfg.as_dict(cfg.resolve(exp.config, quick, values))
    points = []
    for overrides, s in cfg.expand_grid(axes, seeds):
        config = cfg.as_dict(cfg.resolve(exp.config, quick, {**values, **overrides}))
        key = _hash({"experiment": name, "quick": quick, "seed": s, "config": config})
        points.append({"key": key, "seed": s, "overrides": overrides, "config": config})
    return Plan(name, quick, base, {k: list(v) for k, v in axes.items()}, seeds, points)


# ------------------------------------------------------------------ one point


def _study(task: dict):
    """The registered study of ``task``, importing its module in a fresh worker if need be."""
    try:
        return get(task["experiment"])
    except KeyError:
        pass
    import importlib
    import importlib.util

    try:
        importlib.import_module(task["module"])
    except ImportError:
        if not task.get("file"):
            raise
        spec = importlib.util.spec_from_file_location(task["module"], task["file"])
        module = importlib.util.module_from_spec(spec)
        sys.modules[task["module"]] = module
        spec.loader.exec_module(module)
    return get(task["experiment"])


def run_point(task: dict) -> dict:
    """Compute one point (any process): the study in a staging folder, then rename it to ``task["dest"]``.

    With ``task["staging"]`` given the point is written there and left for the
    caller to finish. Never raises for the study's own errors: the outcome
    holds ``status`` ("ok" or "failed"), the error and its traceback.
    """
    start = time.perf_counter()
    exp = _study(task)
    threads = task.get("threads")
    if task.get("threads_by_host") is not None:
        threads = task["threads_by_host"].get(socket.gethostname(), 1)
    dest = Path(task["dest"])
    own_staging = task.get("staging") is None
    staging = dest.parent / staging_name(task["key"]) if own_staging else Path(task["staging"])
    staging.mkdir(parents=True, exist_ok=not own_staging)
    outcome = {"key": task["key"], "seed": task["seed"], "overrides": task["overrides"], "pid": os.getpid(),
               "host": socket.gethostname()}
    try:
        config = cfg.resolve(exp.config, task["quick"], task["config"])
        ctx = Context(exp.name, staging, task["seed"], task["quick"], cfg.as_dict(config),
                      config if exp.config is not None else None, bool(task.get("inline") and task.get("progress")))
        with pinned_threads(threads):
            outcome["threads"] = thread_counts() if threads is not None else None
            results = exp.fn(ctx)
        if not isinstance(results, dict):
            raise TypeError(f"experiment {exp.name!r} must return a dict, got {type(results).__name__}")
        write_json(staging / "results.json", results)
        outcome.update(status="ok", duration_s=time.perf_counter() - start)
        write_json(staging / "point.json", {
            "key": task["key"], "experiment": exp.name, "quick": task["quick"], "seed": task["seed"],
            "overrides": task["overrides"], "config": task["config"],
            "results_sha256": file_digest(staging / "results.json"),
            "worker": {k: outcome[k] for k in ("pid", "host", "threads")}, "duration_s": outcome["duration_s"],
        })
        if own_staging:
            replace_dir(staging, dest)
    except Exception as exc:
        if own_staging:
            shutil.rmtree(staging, ignore_errors=True)
        outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                       duration_s=time.perf_counter() - start)
        if task.get("inline"):
            outcome["exception"] = exc
    except BaseException:  # KeyboardInterrupt, SystemExit: leave nothing half written
        if own_staging:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return outcome


# ------------------------------------------------------------------ a run


@dataclass
class RunOutcome:
    """What :func:`execute` did: the run folder and how many points were skipped, done and failed."""

    run_dir: Path | None
    total: int
    skipped: int = 0
    done: int = 0
    failed: list = field(default_factory=list)


def out_root(out) -> Path:
    """``out`` as a path, checked: not a file, and writable where it would be created (ConfigError otherwise)."""
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {str(root)!r} is a file, not a folder")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {str(root)!r} is not writable")
    return root


def _find_resumable(parent: Path, p: Plan) -> Path | None:
    if not parent.is_dir():
        return None
    for run in sorted((d for d in parent.iterdir() if d.is_dir() and not d.name.startswith(".")), reverse=True):
        try:
            stored = read_json(run / "config.json")
        except (OSError, ValueError):
            continue
        if stored.get("spec_hash") == p.spec_hash and "points" in stored and not _all_done(run, p):
            return run
    return None


def _all_done(run: Path, p: Plan) -> bool:
    return all(point_valid(run / "points" / pt["key"], pt["key"]) for pt in p.points)


def _stored_config(run_dir: Path) -> dict:
    try:
        stored = read_json(run_dir / "config.json")
        stored["spec"], stored["points"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"--resume {str(run_dir)!r} is not a run folder of a sweep (no readable config.json)") from None
    return stored


def plan_from_run(run_dir: str | Path) -> Plan:
    """The plan stored in a run folder's ``config.json`` (to resume it)."""
    spec = _stored_config(Path(run_dir))["spec"]
    return plan(spec["experiment"], quick=spec["quick"], seeds=spec["seeds"], values=dict(spec["base"]), axes=spec["axes"])


def _config_json(p: Plan, exp, sessions: list, single: bool) -> dict:
    from .environment import environment

    return {
        "experiment": p.name, "summary": exp.summary, "quick": p.quick,
        "seed": p.seeds[0] if single else None, "seeds": p.seeds,
        "config": p.base, "params": p.base,  # "params": the name older readers use
        "grid": {"seeds": p.seeds, "axes": p.axes, "points": len(p.points)},
        "spec": p.spec, "spec_hash": p.spec_hash,
        "points": [{"key": pt["key"], "seed": pt["seed"], "overrides": pt["overrides"],
                    "dir": "." if single else f"points/{pt['key']}"} for pt in p.points],
        **environment(),
        "sessions": sessions,
    }


def _session(executor: Executor) -> dict:
    return {"started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "duration_s": None,
            "executor": executor.describe(), "command": " ".join(sys.argv), "pid": os.getpid()}


def _tasks(p: Plan, exp, run_dir: Path, todo: list[dict], progress: bool, staging: Path | None) -> list[dict]:
    base = {"experiment": p.name, "module": exp.module, "file": exp.file, "quick": p.quick, "progress": progress}
    return [dict(base, key=pt["key"], seed=pt["seed"], overrides=pt["overrides"], config=pt["config"],
                 dest=str(staging if staging is not None else run_dir / "points" / pt["key"]),
                 staging=str(staging) if staging is not None else None) for pt in todo]


def _progress_bar(total: int, initial: int, enabled: bool, name: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="point", file=sys.stderr, dynamic_ncols=True)


def _record(run_dir: Path | None, outcome: dict, result: RunOutcome) -> None:
    key = outcome["key"]
    if outcome["status"] == "ok" and run_dir is not None and not (run_dir / "points" / key / "point.json").is_file():
        # e.g. a cluster whose workers do not share this folder's filesystem
        outcome = dict(outcome, status="failed", error=f"the worker reported success but {run_dir}/points/{key} "
                       "is missing (do the workers see the same filesystem?)", traceback="")
    if outcome["status"] == "ok":
        result.done += 1
        if run_dir is not None:
            (run_dir / "points" / f"{key}.failed.json").unlink(missing_ok=True)
        return
    result.failed.append(outcome)
    log.warning("point %s (seed %s%s) failed: %s", key, outcome["seed"],
                "".join(f", {k}={v}" for k, v in outcome["overrides"].items()), outcome["error"])
    if run_dir is not None:
        write_json(run_dir / "points" / f"{key}.failed.json", {k: v for k, v in outcome.items() if k != "exception"})


_NOTICE = {"told": False}


@contextmanager
def _compile_notice(executor: Executor):
    """Log once (INFO) when numba starts compiling kernels in this process: the first call of a kernel can take seconds."""
    if not isinstance(executor, InlineExecutor):
        yield
        return
    from numba.core import event

    class Notice(event.Listener):
        def on_start(self, ev):
            if not _NOTICE["told"]:  # module-level: nested runs (the "all" study) share it
                _NOTICE["told"] = True
                log.info("compiling numba kernels on first use (once per process; can take a few seconds)")

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", Notice()):
        yield


def _run_tasks(executor: Executor, tasks: list[dict], run_dir: Path | None, result: RunOutcome, bar) -> None:
    with _compile_notice(executor):
        for outcome in executor.map(run_point, tasks):
            _record(run_dir, outcome, result)
            if bar is not None:
                bar.update(1)
                if result.failed:
                    bar.set_postfix(failed=len(result.failed))


def execute(p: Plan, *, out: str | Path = "results", executor: Executor | None = None, resume: str | Path | None = None,
            new: bool = False, progress: bool = False) -> RunOutcome:
    """Run the points of ``p`` not yet done; write the results, ``config.json`` and the report.

    A one-point plan (without ``resume``) is staged whole and renamed into
    ``<out>/<name>/<timestamp>/`` when it succeeded. A sweep resumes
    ``resume`` or, unless ``new``, the newest unfinished run of the same plan
    under ``<out>/<name>/``; otherwise it starts a new folder there.
    ``progress``: a tqdm bar on stderr. Failed points are recorded and
    counted in the outcome; KeyboardInterrupt stops after cleaning up the
    points in flight (finished points stay).
    """
    exp = get(p.name)
    if resume is not None:
        stored = _stored_config(Path(resume))
        if stored.get("spec_hash") != p.spec_hash:
            raise ConfigError(f"--resume {str(resume)!r} was run with a different study, config or grid")
        if [pt["dir"] for pt in stored["points"]] == ["."]:  # a one-point run: only ever saved when finished
            from .report import build_report

            build_report(resume)
            return RunOutcome(Path(resume), 1, skipped=1)
    executor = executor or InlineExecutor()
    single = len(p.points) == 1 and resume is None
    parent = out_root(out) / p.name if resume is None else Path(resume).parent
    created = [d for d in (parent, *parent.parents) if not d.exists()]  # removed again if a one-point run fails
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {str(out)!r}: cannot create {str(parent)!r} ({exc.strerror})") from None
    clean_stale_staging(parent)
    result = RunOutcome(None, len(p.points))
    if single:
        return _run_single(p, exp, parent, created, executor, progress, result)
    return _run_sweep(p, exp, parent, resume, new, executor, progress, result)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def _run_single(p: Plan, exp, parent: Path, created: list, executor, progress: bool, result: RunOutcome) -> RunOutcome:
    """One point, staged whole; renamed to ``parent/<timestamp>`` when it succeeded, removed (with any folders
    this run created) when it did not."""
    from .report import build_report

    session, start = _session(executor), time.perf_counter()
    staging = parent / staging_name()
    staging.mkdir()
    try:
        write_json(staging / "config.json", _config_json(p, exp, [session], True))
        bar = _progress_bar(1, 0, progress, p.name)
        try:
            _run_tasks(executor, _tasks(p, exp, staging, p.points, progress, staging), None, result, bar)
        finally:
            if bar is not None:
                bar.close()
        if result.failed:
            raise _Failed()
        session["duration_s"] = round(time.perf_counter() - start, 3)
        write_json(staging / "config.json", _config_json(p, exp, [session], True))
        build_report(staging)
        result.run_dir = commit_dir(staging, parent, _stamp())
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        for d in [parent] + created:
            try:
                d.rmdir()  # only if empty: no bare <out>/<name>/ after a failed run
            except OSError:
                pass
        if not isinstance(exc, _Failed):
            raise
    return result


def _run_sweep(p: Plan, exp, parent: Path, resume, new: bool, executor, progress: bool, result: RunOutcome) -> RunOutcome:
    """The points of ``p`` not done yet in the resumed (or a new) run folder; then the report."""
    from .report import build_report

    session, start = _session(executor), time.perf_counter()
    run_dir = Path(resume) if resume is not None else (None if new else _find_resumable(parent, p))
    if run_dir is None:
        run_dir, sessions = mkdir_unique(parent, _stamp()), []
    else:
        sessions = read_json(run_dir / "config.json").get("sessions", [])
        log.info("resuming %s", run_dir)
    result.run_dir = run_dir
    (run_dir / "points").mkdir(exist_ok=True)
    clean_stale_staging(run_dir / "points")
    write_json(run_dir / "config.json", _config_json(p, exp, sessions + [session], False))
    todo = [pt for pt in p.points if not point_valid(run_dir / "points" / pt["key"], pt["key"])]
    result.skipped = len(p.points) - len(todo)
    if result.skipped:
        log.info("%d of %d points already done", result.skipped, len(p.points))
    bar = _progress_bar(len(p.points), result.skipped, progress, p.name)
    try:
        _run_tasks(executor, _tasks(p, exp, run_dir, todo, progress, None), run_dir, result, bar)
    except KeyboardInterrupt:
        log.warning("interrupted: %d points finished; run the same command again (or --resume %s) to go on",
                    result.skipped + result.done, run_dir)
        raise
    finally:
        if bar is not None:
            bar.close()
        session["duration_s"] = round(time.perf_counter() - start, 3)
        write_json(run_dir / "config.json", _config_json(p, exp, sessions + [session], False))
    build_report(run_dir)
    return result


class _Failed(Exception):
    """The one point of a one-point run failed (internal)."""


def run_experiment(name: str, *, out: str | Path = "results", seed: int = 0, quick: bool = False,
                   params: dict | None = None, seeds: list[int] | None = None, sweep: dict[str, list] | None = None,
                   executor: Executor | None = None, resume: str | Path | None = None, new: bool = False,
                   progress: bool = False) -> Path:
    """Run experiment ``name``; returns its results folder ``<out>/<name>/<timestamp>/``.

    ``params`` override the study's config (or fill ``ctx.params`` of a
    study without one); ``seeds`` (default ``[seed]``) and ``sweep``
    (``{key: [values]}``) make the grid. One point: the folder holds
    ``config.json``, ``results.json``, the study's files and the report, and
    a failure raises the study's exception and leaves nothing behind. A
    sweep: see :func:`execute`; failed points raise :class:`ExperimentFailed`
    after the rest finished. ``executor``: :mod:`experiments.executors`
    (default: this process).
    """
    p = plan(name, quick=quick, seeds=seeds, seed=seed, values=params, axes=sweep)
    outcome = execute(p, out=out, executor=executor, resume=resume, new=new, progress=progress)
    if outcome.failed:
        first = outcome.failed[0]
        if outcome.run_dir is None and isinstance(first.get("exception"), Exception):
            raise first["exception"]
        raise ExperimentFailed(f"{len(outcome.failed)} of {outcome.total} points failed; first: {first['error']}",
                               outcome.run_dir, outcome.failed)
    return outcome.run_dir
