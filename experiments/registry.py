"""The experiment registry and the results-folder convention.

An experiment is a function ``run(ctx) -> dict`` registered with
:func:`experiment`. It reads its settings from ``ctx.quick``, ``ctx.seed``,
and writes figures and extra files under ``ctx.out_dir``; the dict it
returns is written to ``results.json``. :func:`run_experiment` writes
everything into a hidden staging folder and renames it to
``<out>/<name>/<timestamp>/`` only when the run succeeded, so a failed run
never leaves partial results and an existing folder is never overwritten.

Studies live in :mod:`experiments.studies`, one module each; a module there
is registered by importing it in ``experiments/studies/__init__.py``.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["Context", "Experiment", "experiment", "get", "all_experiments", "run_experiment", "DEFAULT_EXPERIMENT"]

#: The study ``neuro run`` runs in the README's main command.
DEFAULT_EXPERIMENT = "activations"


@dataclass(frozen=True)
class Context:
    """What an experiment is given: its settings and the folder to write into."""

    name: str
    out_dir: Path
    seed: int
    quick: bool
    params: dict = field(default_factory=dict)

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@dataclass(frozen=True)
class Experiment:
    name: str
    summary: str
    fn: Callable[[Context], dict]


_EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, summary: str) -> Callable[[Callable[[Context], dict]], Callable[[Context], dict]]:
    """Decorator registering ``fn(ctx) -> dict`` as experiment ``name`` (a one-line ``summary``)."""

    def decorate(fn: Callable[[Context], dict]) -> Callable[[Context], dict]:
        if name in _EXPERIMENTS and _EXPERIMENTS[name].fn is not fn:
            raise ValueError(f"experiment {name!r} is already registered")
        _EXPERIMENTS[name] = Experiment(name, summary, fn)
        return fn

    return decorate


def _load_studies() -> None:
    import experiments.studies  # noqa: F401  (registers on import)


def all_experiments() -> dict[str, Experiment]:
    """Every registered experiment, by name, sorted."""
    _load_studies()
    return dict(sorted(_EXPERIMENTS.items()))


def get(name: str) -> Experiment:
    """The experiment ``name``; ``KeyError`` listing the known names otherwise."""
    known = all_experiments()
    if name not in known:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(known)}")
    return known[name]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` (dicts, lists, NumPy values) as indented JSON."""
    path.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


def _final_dir(root: Path, name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = root / name / stamp
    k = 1
    while candidate.exists():
        candidate = root / name / f"{stamp}-{k}"
        k += 1
    return candidate


def run_experiment(name: str, *, out: str | Path = "results", seed: int = 0, quick: bool = False, params: dict | None = None) -> Path:
    """Run experiment ``name``; returns the results folder ``<out>/<name>/<timestamp>/``.

    The folder holds ``config.json``, ``results.json`` and the experiment's
    figures. ``seed`` must be a non-negative int.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    exp = get(name)
    root = Path(out)
    staging = root / name / f".staging-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S-%f')}"
    staging.mkdir(parents=True, exist_ok=False)
    ctx = Context(name, staging, seed, quick, dict(params or {}))
    config = {
        "experiment": name,
        "seed": seed,
        "quick": quick,
        "params": ctx.params,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "command": " ".join(sys.argv),
    }
    try:
        write_json(staging / "config.json", config)
        results = exp.fn(ctx)
        if not isinstance(results, dict):
            raise TypeError(f"experiment {name!r} must return a dict, got {type(results).__name__}")
        write_json(staging / "results.json", results)
        final = _final_dir(root, name)
        staging.rename(final)  # atomic on one filesystem; final did not exist
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
