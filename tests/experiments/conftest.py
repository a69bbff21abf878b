"""Small studies for the runner and executor tests, registered here so that worker processes
(process pool, Dask) can load them from this file.

``_t-sweep`` reads two environment variables (inherited by worker processes):
``NEURO_TEST_LOG`` (a file: each point appends ``seed x``) and ``NEURO_TEST_FAIL``
(``raise:S``, ``kill:S``, ``term:S`` or ``interrupt:S``: that happens at seed S).
"""

import os
import signal
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments import experiment, param

#: set by a test to make every point of ``_t-barrier`` wait for the others (concurrency test)
BARRIER: list = []


@dataclass(frozen=True)
class SweepConfig:
    x: float = param(1.0, min=-10.0, max=10.0, help="a scale")
    n: int = param(3, min=1, help="draws")
    mode: Literal["plain", "squared"] = "plain"
    tags: tuple[str, ...] = ("a",)

    @classmethod
    def quick(cls):
        return cls(n=2)


def _misbehave(seed: int) -> None:
    action, _, at = os.environ.get("NEURO_TEST_FAIL", "").partition(":")
    if not at or int(at) != seed:
        return
    if action == "raise":
        raise ValueError(f"planned failure at seed {seed}")
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    if action == "interrupt":
        raise KeyboardInterrupt


@experiment("_t-sweep", "a cheap study with a config, for the runner tests", config=SweepConfig)
def sweep_study(ctx):
    (ctx.out_dir / "note.txt").write_text(f"seed {ctx.seed}\n")
    _misbehave(ctx.seed)
    draws = ctx.rng().standard_normal(ctx.config.n) * ctx.config.x
    if ctx.config.mode == "squared":
        draws = draws**2
    ctx.save_arrays("draws.npz", draws=draws)
    log = os.environ.get("NEURO_TEST_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{ctx.seed} {ctx.config.x}\n")
    return {"mean": float(draws.mean()), "draws": draws, "ok": True, "nested": {"first": float(draws[0])},
            "threads": _threads()}


def _threads():
    import numba
    from threadpoolctl import threadpool_info

    return {"numba": numba.get_num_threads(), "pools": max((p["num_threads"] for p in threadpool_info()), default=1)}


@experiment("_t-loose", "a study without a config: params and seeds only")
def loose_study(ctx):
    return {"seed": ctx.seed, "params": dict(ctx.params), "quick": ctx.quick}


@experiment("_t-barrier", "every point waits for the others, so all finish at the same moment")
def barrier_study(ctx):
    if BARRIER:
        BARRIER[0].wait(timeout=30)
    return {"seed": ctx.seed, "thread": threading.get_ident()}


@experiment("_t-nonfinite", "returns NaN and infinities of every kind")
def nonfinite_study(ctx):
    return {"py_nan": float("nan"), "np_nan": np.float64("nan"), "f32_inf": np.float32("inf"),
            "neg_inf": -np.inf, "array": np.array([1.0, np.nan, -np.inf], dtype=np.float32), "finite": 1.5}
