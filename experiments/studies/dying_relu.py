"""Study ``dying-relu``: the fraction of dead neurons vs learning rate and bias initialization.

An MLP (digits, two hidden layers of 64) is trained with plain SGD for each
learning rate (log-spaced, 1e-4 to 1), each initial hidden bias (0, -0.5, -1,
-2) and each of ReLU, leaky ReLU (0.01), PReLU and ELU, over several seeds. A
neuron is *dead* when its output is positive for no training sample (the
recorder's ``active="positive"``; for ReLU that is "always zero", for the
others "stuck on the negative branch"), counted over both hidden layers,
before and after training. A run whose loss became non-finite is marked
diverged (its dead fraction is left out of the means).

Writes ``dead_fraction.png`` (one heatmap per activation: bias init x
learning rate, seed mean; diverged cells crossed) and ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ann import Tensor
from experiments.config import as_dict, param
from experiments.registry import experiment

from . import sparsity_setup as S

ACTIVATIONS = ["relu", "leaky_relu", "prelu", "elu"]
BIASES = [0.0, -0.5, -1.0, -2.0]


@dataclass(frozen=True)
class Config:
    """The grid's size and the training length."""

    seeds: int = param(3, min=1, help="seeds per cell (ctx.seed, ctx.seed + 1, ...)")
    steps: int = param(600, min=1, help="SGD steps per run")
    n_lr: int = param(9, min=1, help="learning rates, log-spaced from 1e-4 to 1")

    @classmethod
    def quick(cls) -> "Config":
        return cls(seeds=2, steps=200, n_lr=5)


def dead_fraction(model, x) -> float:
    """Fraction of hidden neurons (all activation sites) positive on no row of ``x``."""
    summary = S.sparsity_of(model, Tensor(x), active="positive")
    dead = sum(len(s["dead"]) for s in summary.values())
    return dead / sum(s["n_neurons"] for s in summary.values())


def _one(act: str, lr: float, bias: float, data: dict, steps: int, seed: int) -> dict:
    model = S.mlp(act, seed=seed, bias_init=bias)
    before = dead_fraction(model, data["x_train"])
    with np.errstate(all="ignore"):  # large learning rates overflow on purpose; such runs are marked diverged
        fit = S.train_classifier(model, data, steps, lr=lr, seed=seed, optimizer="sgd")
        after = float("nan") if fit["diverged"] else dead_fraction(model, data["x_train"])
    return {"dead_before": before, "dead_after": after, "diverged": fit["diverged"], "test_accuracy": fit["test_accuracy"]}


def _plot(path, lrs, grids: dict, diverged: dict) -> None:
    import matplotlib

    fig, axes = S.figure(len(grids), width=3.6, height=3.2)
    for ax, (act, grid) in zip(axes, grids.items()):
        cmap = matplotlib.colormaps["magma"].with_extremes(bad="0.75")  # diverged cells in gray
        im = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap=cmap, aspect="auto", origin="upper")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                label = "x" if diverged[act][i, j] else f"{grid[i, j]:.2f}"
                ax.text(j, i, label, ha="center", va="center", fontsize=6, color="w" if grid[i, j] < 0.6 else "k")
        ax.set_xticks(range(len(lrs)), [f"{lr:.0e}" for lr in lrs], rotation=60, fontsize=7)
        ax.set_yticks(range(len(BIASES)), [str(b) for b in BIASES], fontsize=7)
        ax.set_xlabel("learning rate (SGD)")
        ax.set_title(f"{act}: dead fraction", fontsize=9)
    axes[0].set_ylabel("initial hidden bias")
    fig.subplots_adjust(left=0.05, right=0.92, bottom=0.3, top=0.9, wspace=0.3)
    fig.colorbar(im, cax=fig.add_axes([0.94, 0.3, 0.012, 0.6]))
    fig.savefig(path, dpi=90)


@experiment("dying-relu", "dead neurons vs learning rate and bias initialization for ReLU, leaky ReLU, PReLU and ELU (heatmaps)",
            config=Config)
def run(ctx) -> dict:
    p = as_dict(ctx.config)
    data = S.digits(seed=ctx.seed)
    lrs = [float(v) for v in np.logspace(-4, 0, p["n_lr"])]
    seeds = [ctx.seed + i for i in range(p["seeds"])]
    runs, means, diverged = {}, {}, {}
    with S.one_thread():
        for act in ACTIVATIONS:
            runs[act] = [[[_one(act, lr, b, data, p["steps"], s) for s in seeds] for lr in lrs] for b in BIASES]
            means[act] = np.array([[np.nanmean([r["dead_after"] for r in cell]) if not all(r["diverged"] for r in cell)
                                    else np.nan for cell in row] for row in runs[act]])
            diverged[act] = np.array([[all(r["diverged"] for r in cell) for cell in row] for row in runs[act]])
    figure = ctx.out_dir / "dead_fraction.png"
    _plot(figure, lrs, means, diverged)
    return {
        "settings": p, "seeds": seeds, "learning_rates": lrs, "bias_inits": BIASES,
        "dead_fraction_mean": {a: m for a, m in means.items()},  # [bias][lr], NaN where every seed diverged
        "dead_before_mean": {a: [[float(np.mean([r["dead_before"] for r in cell])) for cell in row] for row in runs[a]]
                             for a in ACTIVATIONS},
        "all_diverged": diverged,
        "runs": runs,  # [activation][bias][lr][seed]
        "figure": figure.name,
    }
