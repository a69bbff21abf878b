"""lsm-classification: jittered spike templates read out from the Maass et al. (2002) liquid at different times.

Samples of :func:`reservoirs.tasks.spike_template_task` (4 templates, each
one 20 Hz Poisson spike train, every spike jittered by N(0, 4 ms)) drive the
liquid (``n_templates``, ``n_channels`` and ``jitter`` are parameters); a softmax readout (L2 1e-2) trained on the
liquid's state at time ``t`` (spike trains filtered with tau 30 ms) is scored
on held-out samples, for readout times ``t`` along the input. Two input-only
baselines see the same samples:

* ``filtered input``: the input spike trains filtered the same way (tau 30 ms)
  at ``t``: what a readout of the input's recent past can do without a liquid;
* ``binned counts``: the input spike counts in 20 ms bins from 0 to ``t``
  (the whole history so far, a strong baseline that grows with ``t``).

So the liquid's contribution is the gap to the filtered input (same readout
filter, 1 vs 135 dimensions). With one input channel the filtered input holds
little more than the time since the last spike, while the liquid keeps a
trace of the spike pattern: measured (1 circuit, 200 training samples) 0.79
vs 0.56 held-out accuracy at 50 ms and 1.0 vs 0.71 at 100 ms, as good as the
binned counts of the whole history. With 4 channels of 8 jittered templates
the filtered input alone does as well as the liquid (0.91 vs 0.85 at 100 ms):
the task is then easy without it. Several circuits (seeds); the data set is
the same for all. ``params={"engine": "brian2"}`` runs the liquid in Brian2.

Writes ``accuracy_vs_time.png``; ``results.json`` holds the accuracy per
circuit and readout time for the liquid and per readout time for the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.config import param
from experiments.registry import experiment
from experiments.studies._figures import figure, save
from experiments.studies.lsm_separation import filtered_input_traces
from reservoirs import LSM, SoftmaxReadout, tasks

L2 = 1e-2
BIN = 20.0  # ms


def accuracy(train_x, train_y, test_x, test_y) -> float:
    """Held-out accuracy of a softmax readout on standardized features."""
    mean, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-9
    clf = SoftmaxReadout(l2=L2).fit((train_x - mean) / sd, train_y)
    return float(clf.score((test_x - mean) / sd, test_y))


def binned_counts(samples, duration: float, t: float) -> np.ndarray:
    """Input spike counts in ``BIN`` ms bins over ``[0, t)``, flattened: ``(B, ceil(t / BIN) * C)``."""
    counts = tasks.bin_spikes(samples, duration, BIN)[:, : int(np.ceil(t / BIN - 1e-9))]
    return counts.reshape(len(samples), -1)


def write_figures(out_dir, res) -> list[str]:
    names = []
    fig, axes = figure(5.5, 3.8)
    ax = axes[0]
    t = np.asarray(res["readout_times"])
    liquid = np.asarray(res["liquid"])  # (circuits, K)
    ax.errorbar(t, liquid.mean(axis=0), yerr=liquid.std(axis=0), marker="o", capsize=2,
                label=f"liquid (135 LIF, {len(res['circuits'])} circuits)")
    ax.plot(t, res["filtered_input"], marker="s", label=f"filtered input ({res['n_channels']} trace(s), tau 30 ms)")
    ax.plot(t, res["binned_counts"], marker="^", label=f"binned input counts ({BIN:g} ms bins, 0..t)")
    ax.axhline(1.0 / res["n_templates"], color="0.6", ls="--", lw=1, label="chance")
    ax.set_xlabel("readout time t (ms)")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{res['n_templates']} jittered spike templates ({res['jitter']:g} ms), "
                 f"{res['n_train']} train / {res['n_test']} test", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out_dir, "accuracy_vs_time.png", names)
    return names


@dataclass(frozen=True)
class Config:
    """The task, the circuits, the readout times and how the liquid is run."""

    duration: float = param(500.0, min=1.0, help="length of each sample (ms)")
    n_templates: int = param(4, min=2, help="spike templates (classes)")
    n_train: int = param(400, min=1, help="training samples")
    n_test: int = param(200, min=1, help="test samples")
    circuits: int = param(5, min=1, help="random liquids (seeds ctx.seed + 100 c)")
    jitter: float = param(4.0, min=0.0, help="spike jitter (ms, SD) of the samples around their template")
    n_channels: int = param(1, min=1, help="input spike trains per sample")
    engine: Literal["native", "brian2"] = param("native", help="simulator of the liquid")
    input_synapses: Literal["dynamic", "static"] = param("dynamic", help="depressing or fixed-strength input synapses")
    readout_times: tuple[float, ...] = param((10.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0),
                                             help="times (ms, in (0, duration]) the readouts are trained at")

    def __post_init__(self):
        if not self.readout_times:
            raise ValueError("readout_times: give at least one time")
        if not all(0.0 < t <= self.duration for t in self.readout_times):
            raise ValueError(f"readout_times: each must lie in (0, duration={self.duration:g}], got {list(self.readout_times)}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(duration=300.0, n_train=160, n_test=80, circuits=2, readout_times=(25.0, 50.0, 100.0, 200.0, 300.0))


@experiment("lsm-classification", "Maass 2002 liquid: jittered spike-template classification vs readout time, against input-only baselines",
            config=Config)
def run(ctx) -> dict:
    config = ctx.config
    duration, n_templates, n_train, n_test = config.duration, config.n_templates, config.n_train, config.n_test
    n_circuits, jitter, n_channels = config.circuits, config.jitter, config.n_channels
    engine, input_synapses = config.engine, config.input_synapses
    times = np.asarray(config.readout_times, dtype=np.float64)
    samples, labels, _ = tasks.spike_template_task(n_train + n_test, n_templates=n_templates, n_channels=n_channels,
                                                   duration=duration, jitter=jitter, seed=ctx.seed)
    tr, te = slice(0, n_train), slice(n_train, None)
    circuits = [ctx.seed + 100 * c for c in range(n_circuits)]
    liquid = []
    for c, seed in enumerate(circuits):
        lsm = LSM.maass2002(seed=seed, n_inputs=n_channels, input_synapses=input_synapses)
        states = lsm.run(samples, duration, sample_times=times, seed=seed + 1, engine=engine)  # (B, K, N)
        liquid.append([accuracy(states[tr, k], labels[tr], states[te, k], labels[te]) for k in range(len(times))])
    filtered = filtered_input_traces(samples, times)  # (B, K, C)
    res = {
        "duration": duration, "n_templates": n_templates, "n_train": n_train, "n_test": n_test, "jitter": jitter,
        "n_channels": n_channels, "engine": engine, "input_synapses": input_synapses, "circuits": circuits, "readout_times": times,
        "liquid": np.array(liquid),
        "filtered_input": [accuracy(filtered[tr, k], labels[tr], filtered[te, k], labels[te]) for k in range(len(times))],
        "binned_counts": [accuracy(binned_counts(samples[:n_train], duration, t), labels[tr],
                                   binned_counts(samples[n_train:], duration, t), labels[te]) for t in times],
    }
    res["liquid_mean"] = res["liquid"].mean(axis=0)
    res["figures"] = write_figures(ctx.out_dir, res)
    return res
