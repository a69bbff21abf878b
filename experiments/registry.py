"""The experiment registry: studies register a function ``run(ctx) -> dict``.

An experiment is a function ``run(ctx) -> dict`` registered with
:func:`experiment`. It reads its settings from ``ctx.quick``, ``ctx.seed``,
``ctx.params`` (and ``ctx.config`` where the study declares a config schema),
writes figures, arrays and extra files under ``ctx.out_dir``, and returns a
dict, written to ``results.json``. One call is one point of a run; the runner
(:mod:`experiments.runner`) runs the points of a sweep over seeds and
parameters and builds the report.

Studies live in :mod:`experiments.studies`, one module each; a module there
is registered by importing it in ``experiments/studies/__init__.py``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import _check_schema
from .jsonio import write_json  # noqa: F401  (kept: registry.write_json is public API)

__all__ = ["Context", "Experiment", "experiment", "get", "all_experiments", "run_experiment", "DEFAULT_EXPERIMENT"]

#: The study ``neuro run`` runs in the README's main command.
DEFAULT_EXPERIMENT = "all"


@dataclass(frozen=True)
class Context:
    """What an experiment is given: its settings and the folder to write into.

    ``config`` is the resolved config (an instance of the study's schema) or
    None for a study without one; ``params`` is the same as a dict (for a
    schema-less study: the ``--set`` values).
    """

    name: str
    out_dir: Path
    seed: int
    quick: bool
    params: dict = field(default_factory=dict)
    config: Any = None
    show_progress: bool = False

    def rng(self) -> np.random.Generator:
        """A generator seeded with ``seed`` (same seed, same draws)."""
        return np.random.default_rng(self.seed)

    def save_arrays(self, name: str, **arrays) -> Path:
        """Save the arrays behind a figure as ``out_dir/name`` (``.npz``, no pickle); returns the path."""
        path = self.out_dir / name
        if path.suffix != ".npz":
            raise ValueError(f"name must end in .npz, got {name!r}")
        np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
        return path

    def progress(self, iterable, *, desc: str = "", total: int | None = None):
        """``iterable``, with a progress bar (tqdm, on stderr) when the run asked for one and runs in this process."""
        if not self.show_progress:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, leave=False, position=1, file=sys.stderr)


@dataclass(frozen=True)
class Experiment:
    """A registered study: ``fn(ctx) -> dict``, its optional config schema and report section.

    ``report(run, figures_dir) -> str`` (optional) draws the study's figures
    from a finished run's saved data (:class:`experiments.report.RunData`) and
    returns the markdown it adds to ``report.md``.
    """

    name: str
    summary: str
    fn: Callable[[Context], dict]
    config: type | None = None
    report: Callable | None = None

    @property
    def module(self) -> str:
        return self.fn.__module__

    @property
    def file(self) -> str | None:
        return getattr(sys.modules.get(self.fn.__module__), "__file__", None)


_EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, summary: str, *, config: type | None = None,
               report: Callable | None = None) -> Callable[[Callable[[Context], dict]], Callable[[Context], dict]]:
    """Decorator registering ``fn(ctx) -> dict`` as experiment ``name`` (a one-line ``summary``).

    ``config`` (optional): a dataclass declaring the parameters (see
    :mod:`experiments.config`); ``report`` (optional): see :class:`Experiment`.
    """
    if config is not None:
        _check_schema(config)

    def decorate(fn: Callable[[Context], dict]) -> Callable[[Context], dict]:
        if name in _EXPERIMENTS and _EXPERIMENTS[name].fn is not fn:
            old = _EXPERIMENTS[name].fn
            # the same function defined again (its module imported under a second name) is the same study
            if (old.__qualname__, getattr(old, "__code__", None) and old.__code__.co_filename) != \
                    (fn.__qualname__, getattr(fn, "__code__", None) and fn.__code__.co_filename):
                raise ValueError(f"experiment {name!r} is already registered")
        _EXPERIMENTS[name] = Experiment(name, summary, fn, config, report)
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


from .runner import run_experiment  # noqa: E402  (the runner needs the registry above)
