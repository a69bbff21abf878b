"""lsm-separation: the separation property of the Maass et al. (2002) liquid, against the input itself.

Pairs of input streams ``u, v`` (4 channels of 20 Hz Poisson spikes) are made
at controlled distances: ``v`` is ``u`` with every spike moved by Gaussian
jitter of SD ``s`` ms (``s = 0`` gives identical inputs), or an independent
draw. Following Maass, Natschlaeger & Markram (2002, Fig. 2), the input
distance is ``||u * G - v * G|| / T``, the spike trains convolved with a
Gaussian kernel ``exp(-(t / 5 ms)^2)`` (1 ms bins, all channels, ``T`` in
ms), and the separation at time ``t`` is the Euclidean distance between the
two liquid states (:func:`reservoirs.metrics.separation_of_states` on the
LSM's traces: spike trains filtered with tau 30 ms, every 10 ms). Every
trial starts from its own random initial voltages, so the ``s = 0`` curve is
the liquid's noise floor (the distance from the initial state alone).

Input-only baseline: the same distance on the input spike trains filtered
the same way (tau 30 ms). Both are also shown normalized by their value for
independent inputs, so their shapes compare: a liquid that separates well
spreads small input differences further than the input itself does.

With the preset's depressing input synapses the liquid quiets within a few
hundred ms of steady input, so the separation fades with time;
``params={"input_synapses": "static"}`` keeps it driven.

Several liquids (circuit seeds); ``engine`` is ``"native"`` (default) or
``"brian2"`` (``params={"engine": "brian2"}``; the full run also checks one
small batch on both engines and records the largest state difference).

Writes ``separation_vs_time.png``, ``separation_vs_distance.png``;
``results.json`` holds per-pair input distances, per-circuit mean curves
and the summaries plotted.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d

from experiments.config import param
from experiments.registry import experiment
from experiments.studies._figures import figure, save
from reservoirs import LSM, tasks
from reservoirs.metrics import separation_of_states

RATE = 20.0  # Hz per input channel
N_CHANNELS = 4
TAU_READOUT = 30.0  # ms, as the LSM's traces
KERNEL_TAU = 5.0  # ms, Maass et al.'s input-distance kernel exp(-(t / tau)^2)


def poisson_trains(n: int, duration: float, rng) -> list:
    """``n`` trials of ``N_CHANNELS`` Poisson spike trains (ms), as :func:`reservoirs.tasks.spike_template_task` gives."""
    return [[np.sort(rng.uniform(0.0, duration, rng.poisson(RATE * duration / 1000.0))) for _ in range(N_CHANNELS)]
            for _ in range(n)]


def jittered(trials: list, sd: float, duration: float, rng) -> list:
    """Every spike moved by N(0, sd) ms; spikes leaving ``[0, duration)`` dropped."""
    out = []
    for trial in trials:
        moved = [t + sd * rng.standard_normal(t.size) for t in trial]
        out.append([np.sort(m[(m >= 0.0) & (m < duration)]) for m in moved])
    return out


def input_distance(a: list, b: list, duration: float) -> np.ndarray:
    """Maass et al.'s ``||u * G - v * G|| / T`` per pair of trials: ``(B,)``.

    ``G(t) = exp(-(t / 5 ms)^2)`` is a Gaussian of SD ``5 / sqrt(2)`` ms; spikes binned at 1 ms.
    """
    diff = tasks.bin_spikes(a, duration, 1.0) - tasks.bin_spikes(b, duration, 1.0)  # (B, T, C)
    sigma = KERNEL_TAU / np.sqrt(2.0)
    smooth = gaussian_filter1d(diff, sigma, axis=1, mode="constant") * sigma * np.sqrt(2 * np.pi)  # unit-height kernel
    return np.linalg.norm(smooth.reshape(len(a), -1), axis=1) / duration


def filtered_input_traces(trials: list, sample_times, tau: float = TAU_READOUT) -> np.ndarray:
    """The input spike trains filtered like the LSM's readout (each spike adds 1, decays with ``tau`` ms).

    Returns ``(B, K, C)`` at the ``K`` ``sample_times`` (ms): the input-only baseline state.
    """
    sample_times = np.asarray(sample_times, dtype=np.float64)
    out = np.zeros((len(trials), sample_times.size, len(trials[0])))
    for b, trial in enumerate(trials):
        for c, ts in enumerate(trial):
            lag = sample_times[:, None] - np.asarray(ts)[None, :]
            out[b, :, c] = np.where(lag >= 0, np.exp(-np.clip(lag, 0, None) / tau), 0.0).sum(axis=1)
    return out


def _run_pairs(lsm, us, vs, duration, times, engine, rng):
    """Liquid states of both members of each pair, each trial from its own initial voltages."""
    seeds = rng.integers(0, 2**31, size=(2, len(us)))
    xu = lsm.run(us, duration, sample_times=times, seed=list(seeds[0]), engine=engine)
    xv = lsm.run(vs, duration, sample_times=times, seed=list(seeds[1]), engine=engine)
    return xu, xv


def write_figures(out_dir, res) -> list[str]:
    names = []
    times = np.asarray(res["sample_times"])
    levels = res["levels"]
    fig, axes = figure(9.5, 3.6, 1, 2)
    for label in levels:
        curve = np.asarray(res["liquid"]["mean_curve"][label])  # (circuits, K)
        axes[0].plot(times, curve.mean(axis=0), label=f"{label} (d = {res['input_distance_mean'][label]:.3f})")
        axes[1].plot(times, np.asarray(res["input_only"]["mean_curve"][label]), label=label)
    axes[0].set_title(f"liquid state distance (mean of {len(res['circuits'])} circuits x {res['pairs']} pairs)", fontsize=9)
    axes[1].set_title("input-only: filtered input traces (tau 30 ms)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("state distance ||x_u(t) - x_v(t)||")
    axes[0].legend(fontsize=6, title="jitter of v", title_fontsize=7)
    save(fig, out_dir, "separation_vs_time.png", names)

    fig, axes = figure(5.0, 3.8)
    ax = axes[0]
    d = [res["input_distance_mean"][k] for k in levels]
    for key, label, marker in (("liquid", "liquid (135 LIF)", "o"), ("input_only", "input only (4 traces)", "s")):
        mean = np.asarray(res["normalized_at_readout"][key]["mean"])
        sd = np.asarray(res["normalized_at_readout"][key]["sem"])
        ax.errorbar(d, mean, yerr=sd, marker=marker, capsize=2, label=label)
    ax.set_xlabel("input distance d(u, v) (Maass et al. 2002)")
    ax.set_ylabel(f"state distance at {res['readout_time']:g} ms / independent inputs'")
    ax.set_title("separation vs input distance", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out_dir, "separation_vs_distance.png", names)
    return names


@dataclass(frozen=True)
class Config:
    """The input pairs, the jitter levels, the circuits and how the liquid is run."""

    duration: float = param(500.0, min=10.0, help="length of each input (ms)")
    pairs: int = param(40, min=1, help="input pairs per distance level")
    circuits: int = param(5, min=1, help="random liquids (seeds ctx.seed + 100 c)")
    jitters: tuple[float, ...] = param((0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0), min=0.0,
                                       help="spike jitters (ms, SD) of the pairs' second inputs")
    engine: Literal["native", "brian2"] = param("native", help="simulator of the liquid")
    input_synapses: Literal["dynamic", "static"] = param("dynamic", help="depressing or fixed-strength input synapses")
    readout_time: float = param(100.0, min=0.0, help="time (ms) the distances are compared at (nearest 10 ms sample)")

    @classmethod
    def quick(cls) -> "Config":
        return cls(duration=300.0, pairs=12, circuits=2, jitters=(0.0, 2.0, 8.0, 32.0))


@experiment("lsm-separation", "Maass 2002 liquid: state distance vs input distance over time, against the input itself",
            config=Config)
def run(ctx) -> dict:
    quick, config = ctx.quick, ctx.config
    duration, pairs, n_circuits, jitters = config.duration, config.pairs, config.circuits, list(config.jitters)
    engine, input_synapses, readout_time = config.engine, config.input_synapses, config.readout_time
    times = np.arange(10.0, duration + 1e-9, 10.0)
    k_read = int(np.argmin(np.abs(times - readout_time)))
    levels = [f"jitter {s:g} ms" for s in jitters] + ["independent"]
    rng = ctx.rng()
    base = poisson_trains(pairs, duration, rng)
    others = {f"jitter {s:g} ms": jittered(base, s, duration, rng) for s in jitters}
    others["independent"] = poisson_trains(pairs, duration, rng)
    dist = {k: input_distance(base, v, duration) for k, v in others.items()}
    circuits = [ctx.seed + 100 * c for c in range(n_circuits)]
    liquid = {k: [] for k in levels}  # per circuit: (pairs, K)
    for seed in circuits:
        lsm = LSM.maass2002(seed=seed, n_inputs=N_CHANNELS, input_synapses=input_synapses)
        for k in levels:
            xu, xv = _run_pairs(lsm, base, others[k], duration, times, engine, rng)
            liquid[k].append(separation_of_states(xu, xv))
    u_in = filtered_input_traces(base, times)
    inputs = {k: separation_of_states(u_in, filtered_input_traces(others[k], times)) for k in levels}  # (pairs, K)

    def normalized(per_level, ref):
        """Mean distance at the readout time over the independent pairs' mean, and its standard error."""
        at = {k: np.asarray(v)[..., k_read].ravel() for k, v in per_level.items()}
        ref_mean = np.mean(at[ref])
        return {"mean": [float(np.mean(at[k]) / ref_mean) for k in levels],
                "sem": [float(np.std(at[k]) / ref_mean / np.sqrt(at[k].size)) for k in levels]}

    liquid_pairs = {k: np.stack(v) for k, v in liquid.items()}  # (circuits, pairs, K)
    res = {
        "duration": duration, "pairs": pairs, "circuits": circuits, "engine": engine, "input_synapses": input_synapses, "jitters": jitters,
        "levels": levels, "sample_times": times, "readout_time": float(times[k_read]),
        "input_distance": {k: v for k, v in dist.items()},
        "input_distance_mean": {k: float(v.mean()) for k, v in dist.items()},
        "liquid": {"mean_curve": {k: v.mean(axis=1) for k, v in liquid_pairs.items()},  # (circuits, K)
                   "at_readout": {k: v[:, :, k_read] for k, v in liquid_pairs.items()}},
        "input_only": {"mean_curve": {k: v.mean(axis=0) for k, v in inputs.items()},
                       "at_readout": {k: v[:, k_read] for k, v in inputs.items()}},
        "normalized_at_readout": {"liquid": normalized(liquid_pairs, "independent"),
                                  "input_only": normalized(inputs, "independent")},
    }
    if not quick and engine == "native" and importlib.util.find_spec("brian2") is not None:
        lsm = LSM.maass2002(seed=circuits[0], n_inputs=N_CHANNELS)
        n, T = min(4, pairs), min(200.0, duration)
        a = lsm.run(base[:n], T, seed=list(range(n)), engine="native")
        b = lsm.run(base[:n], T, seed=list(range(n)), engine="brian2")
        res["brian2_check"] = {"trials": n, "duration": T, "max_abs_state_difference": float(np.abs(a - b).max())}
    res["figures"] = write_figures(ctx.out_dir, res)
    return res
