"""reservoir-benchmarks: an ESN on Mackey-Glass, NARMA-10 and memory capacity across spectral radius x leak rate.

Three standard tasks, each on the same data for every setting and seed:

* ``mackey-glass``: the Mackey-Glass series (tau = 17, sampled every 1.0,
  standardized), predicted ``HORIZON = 10`` steps ahead (one step ahead is too
  easy to tell settings apart); NRMSE on the last quarter.
* ``narma10``: NARMA-10 from its ``U[0, 0.5]`` input; NRMSE on the last quarter.
* ``memory-capacity``: i.i.d. ``U[-1, 1]`` input, ``MC = sum_k r^2`` over
  delays ``1 .. units`` (:func:`reservoirs.metrics.memory_capacity_of_states`).

The ESN (``units`` tanh units, no bias, 10% recurrent connectivity) is swept
over spectral radius (rows) x leak rate (columns) for several seeds (a seed
draws the weights and the data); a ridge readout (1e-6) is fitted on the
first three quarters after a warm-up of 100 steps. Where ReservoirPy is
installed its ``Reservoir`` + ``Ridge`` with the same hyperparameters run on
the same data and seeds (their own weight draws) at every spectral radius, at
the leak rate where ours did best on that task: the reference column.

Writes ``heatmaps.png`` (mean over seeds, one panel per task, the ReservoirPy
column beside each) and ``radius_profiles.png`` (ours vs ReservoirPy along
that column, with the spread over seeds); ``results.json`` holds every value
per seed.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass

import numpy as np

from experiments.config import param
from experiments.registry import experiment
from experiments.studies._figures import figure, save
from reservoirs import ESN, Ridge, UnstableReservoirWarning, metrics, tasks

HORIZON = 10
WARMUP = 100
TASKS = ("mackey-glass", "narma10", "memory-capacity")
#: Per-task input weights (the same for both libraries): input scaling and input connectivity.
INPUT = {"mackey-glass": (0.5, 1.0), "narma10": (1.0, 0.1), "memory-capacity": (0.1, 1.0)}


def task_data(task: str, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Input ``(T, 1)`` and target ``(T, K)`` of ``task`` (``K = 1``; MC returns the raw input as target)."""
    if task == "mackey-glass":
        x = tasks.mackey_glass(n_steps + HORIZON, seed=seed)
        x = (x - x.mean()) / x.std()
        return x[:-HORIZON], x[HORIZON:]
    if task == "narma10":
        return tasks.narma10(n_steps, seed=seed)
    u, _ = tasks.delayed_recall(n_steps, 1, seed=seed)
    return u, u


def score(task: str, states: np.ndarray, u: np.ndarray, y: np.ndarray, units: int) -> float:
    """NRMSE (prediction tasks) or memory capacity from the states ``(T, N)``, with a ridge readout."""
    if task == "memory-capacity":
        return metrics.memory_capacity_of_states(states, u, units, warmup=max(WARMUP, units), ridge=1e-6)
    split = 3 * len(u) // 4
    readout = Ridge(1e-6).fit(states[WARMUP:split], y[WARMUP:split])
    return float(metrics.nrmse(y[split:], readout.predict(states[split:])))


def ours(task, u, y, units, radius, leak, seed) -> float:
    scaling, density = INPUT[task]
    esn = ESN(units, spectral_radius=radius, leak_rate=leak, input_scaling=scaling, input_connectivity=density,
              seed=seed, threads=1)
    return score(task, np.asarray(esn.run(u)), u, y, units)


def reservoirpy_score(task, u, y, units, radius, leak, seed) -> float:
    from reservoirpy.nodes import Reservoir, Ridge as RpyRidge

    scaling, density = INPUT[task]
    res = Reservoir(units, sr=radius, lr=leak, input_scaling=scaling, input_connectivity=density,
                    rc_connectivity=0.1, bias=np.zeros(units), seed=seed)
    states = res.run(u)
    if task == "memory-capacity":
        return score(task, states, u, y, units)
    split = 3 * len(u) // 4
    readout = RpyRidge(ridge=1e-6).fit(states[WARMUP:split], y[WARMUP:split])
    return float(metrics.nrmse(y[split:], readout.run(states[split:])))


def write_figures(out_dir, res: dict) -> list[str]:
    names = []
    radii, leaks = res["spectral_radius"], res["leak_rate"]
    fig, axes = figure(4.2 * len(TASKS), 3.8, 1, len(TASKS))
    for ax, task in zip(axes, TASKS):
        mean = np.mean(res["ours"][task], axis=0)  # (R, L)
        ref = res["reservoirpy"].get(task)
        grid = mean if ref is None else np.column_stack([mean, np.full(len(radii), np.nan), np.mean(ref, axis=0)])
        good_high = task == "memory-capacity"
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis" if good_high else "viridis_r")
        labels = [f"{a:g}" for a in leaks] + ([] if ref is None else ["", f"rpy\n{res['reference_leak'][task]:g}"])
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(range(len(radii)), [f"{r:g}" for r in radii], fontsize=7)
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}" if not good_high else f"{v:.0f}", ha="center", va="center", fontsize=6,
                        color="w")
        ax.set_xlabel("leak rate" + ("" if ref is None else " | ReservoirPy at ours' best leak"))
        ax.set_ylabel("spectral radius")
        ax.set_title(f"{task}: {'MC' if good_high else 'test NRMSE'} (mean of {len(res['seeds'])} seeds)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    save(fig, out_dir, "heatmaps.png", names)

    fig, axes = figure(4.0 * len(TASKS), 3.2, 1, len(TASKS))
    for ax, task in zip(axes, TASKS):
        j = leaks.index(res["reference_leak"][task])
        for label, values in (("ours", np.asarray(res["ours"][task])[:, :, j]), ("ReservoirPy", res["reservoirpy"].get(task))):
            if values is None:
                continue
            values = np.asarray(values)
            ax.errorbar(radii, values.mean(axis=0), yerr=values.std(axis=0), marker="o", ms=3, capsize=2, label=label)
        ax.set_xlabel("spectral radius")
        ax.set_ylabel("memory capacity" if task == "memory-capacity" else "test NRMSE")
        ax.set_title(f"{task}, leak rate {res['reference_leak'][task]:g}", fontsize=9)
        ax.legend(fontsize=7)
    save(fig, out_dir, "radius_profiles.png", names)
    return names


@dataclass(frozen=True)
class Config:
    """The grid swept, the reservoir size, the series length and the seeds."""

    spectral_radius: tuple[float, ...] = param((0.1, 0.3, 0.6, 0.9, 1.1, 1.3), min=0.0, help="spectral radii swept")
    leak_rate: tuple[float, ...] = param((0.05, 0.1, 0.2, 0.4, 0.7, 1.0), min=0.0, max=1.0, help="leak rates swept")
    units: int = param(200, min=1, help="reservoir units")
    n_steps: int = param(4000, min=1, help="time steps of each task's series")
    seeds: int = param(5, min=1, help="seeds (ctx.seed, ctx.seed + 1, ...)")
    reservoirpy: bool = param(True, help="also run ReservoirPy's ESN (where it is installed)")

    def __post_init__(self):
        for name in ("spectral_radius", "leak_rate"):
            if not getattr(self, name):
                raise ValueError(f"{name}: give at least one value")

    @classmethod
    def quick(cls) -> "Config":
        return cls(spectral_radius=(0.3, 0.9, 1.2), leak_rate=(0.1, 0.4, 1.0), units=50, n_steps=1200, seeds=2)


@experiment("reservoir-benchmarks", "ESN on Mackey-Glass, NARMA-10 and memory capacity over spectral radius x leak rate, ReservoirPy alongside",
            config=Config)
def run(ctx) -> dict:
    config = ctx.config
    radii, leaks = list(config.spectral_radius), list(config.leak_rate)
    units, n_steps, n_seeds = config.units, config.n_steps, config.seeds
    use_rpy = config.reservoirpy and importlib.util.find_spec("reservoirpy") is not None
    seeds = [ctx.seed + k for k in range(n_seeds)]
    res = {"spectral_radius": radii, "leak_rate": leaks, "units": units, "n_steps": n_steps, "seeds": seeds,
           "horizon_mackey_glass": HORIZON, "input": {t: {"input_scaling": s, "input_connectivity": c} for t, (s, c) in INPUT.items()},
           "ours": {}, "reservoirpy": {}, "reference_leak": {}, "best": {}, "reservoirpy_installed": use_rpy}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableReservoirWarning)  # radii >= 1 are swept on purpose
        for t_index, task in enumerate(TASKS):
            data = [task_data(task, n_steps, 1000 * t_index + s) for s in seeds]
            grid = np.array([[[ours(task, u, y, units, r, a, s) for a in leaks] for r in radii]
                             for s, (u, y) in zip(seeds, data)])  # (S, R, L)
            res["ours"][task] = grid
            mean = grid.mean(axis=0)
            i, j = np.unravel_index(np.argmax(mean) if task == "memory-capacity" else np.argmin(mean), mean.shape)
            res["best"][task] = {"spectral_radius": radii[i], "leak_rate": leaks[j], "value": float(mean[i, j])}
            res["reference_leak"][task] = leaks[j]
            if use_rpy:
                res["reservoirpy"][task] = np.array([[reservoirpy_score(task, u, y, units, r, leaks[j], s) for r in radii]
                                                     for s, (u, y) in zip(seeds, data)])  # (S, R)
    res["figures"] = write_figures(ctx.out_dir, res)
    return res
