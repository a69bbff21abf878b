"""Study ``sparsity-activations``: how sparse are hidden activations, per activation function?

The same MLP (digits, 64-64 hidden) and the same small Transformer (character
LM on Python sources) are trained with ReLU, leaky ReLU, GELU, SiLU, SwiGLU
and ReGLU (ReLU-gated GLU), for several seeds. Every ``every`` steps the
recorder (:class:`ann.sparsity.SparsityRecorder`) measures, on a fixed batch,
the fraction of exact zeros and of ``|a| <= 1e-3`` per activation site.

Writes ``sparsity_vs_step.png`` (mean exact-zero fraction over the sites vs
training step, seed mean, one line per activation; MLP and Transformer
panels) and ``results.json`` with, per model, activation and seed: the
curves, the final per-layer fractions, and test accuracy or held-out loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ann import Tensor
from ann.text import random_windows
from experiments.config import as_dict, param
from experiments.registry import experiment

from . import sparsity_setup as S

ACTIVATIONS = ["relu", "leaky_relu", "gelu", "silu", "swiglu", "reglu"]


@dataclass(frozen=True)
class Config:
    """Seeds, training lengths, the recording interval and the corpus size."""

    seeds: int = param(3, min=1, help="seeds (ctx.seed, ctx.seed + 1, ...)")
    mlp_steps: int = param(1500, min=1, help="training steps of the MLP")
    lm_steps: int = param(400, min=1, help="training steps of the Transformer")
    every: int = param(50, min=1, help="record the sparsity every this many steps")
    n_chars: int = param(200_000, min=1, help="characters of Python source in the corpus")

    @classmethod
    def quick(cls) -> "Config":
        return cls(seeds=2, mlp_steps=150, lm_steps=40, every=10, n_chars=40_000)


def _curve(model, x, steps: list, points: list):
    def on_eval(step):
        steps.append(step)
        points.append(S.layer_means(S.sparsity_of(model, x)))

    return on_eval


def _run_mlp(activation: str, data: dict, p: dict, seed: int) -> dict:
    model = S.mlp(activation, seed=seed)
    steps, points = [], []
    fit = S.train_classifier(model, data, p["mlp_steps"], lr=3e-3, seed=seed, every=p["every"],
                             on_eval=_curve(model, Tensor(data["x_test"]), steps, points))
    return {"steps": steps, "mean_zero_fraction": [q["mean_zero_fraction"] for q in points],
            "mean_small_fraction": [q["mean_small_fraction"] for q in points], "final": points[-1],
            "test_accuracy": fit["test_accuracy"]}


def _run_lm(activation: str, corpus: dict, p: dict, seed: int, quick: bool) -> dict:
    model = S.char_lm(len(corpus["vocab"]), activation, quick, seed=seed)
    probe, _ = random_windows(corpus["held_out"], 8, 48, seed=1000 + seed)
    steps, points = [], []
    S.train_lm(model, corpus["train"], p["lm_steps"], seed=seed, every=p["every"],
               on_eval=_curve(model, probe, steps, points))
    return {"steps": steps, "mean_zero_fraction": [q["mean_zero_fraction"] for q in points],
            "mean_small_fraction": [q["mean_small_fraction"] for q in points], "final": points[-1],
            "held_out_loss": S.lm_loss(model, corpus["held_out"], 32, 48, seed=2000 + seed)}


def _plot(path, results: dict) -> None:
    fig, axes = S.figure(2)
    for ax, (kind, title) in zip(axes, (("mlp", "MLP on digits"), ("transformer", "Transformer char LM"))):
        for act, runs in results[kind].items():
            steps = runs[0]["steps"]
            mean = np.mean([r["mean_zero_fraction"] for r in runs], axis=0)
            ax.plot(steps, mean, marker="o", ms=3, label=act)
        ax.set_xlabel("training step")
        ax.set_ylabel("exact-zero fraction (layer mean)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


@experiment("sparsity-activations", "activation sparsity vs training step for ReLU, leaky ReLU, GELU, SiLU, SwiGLU, ReGLU (MLP and Transformer)",
            config=Config)
def run(ctx) -> dict:
    p = as_dict(ctx.config)
    data = S.digits(seed=ctx.seed)
    corpus = S.text(p["n_chars"], seed=ctx.seed)
    seeds = [ctx.seed + i for i in range(p["seeds"])]
    results = {"mlp": {}, "transformer": {}}
    with S.one_thread():
        for act in ACTIVATIONS:
            results["mlp"][act] = [_run_mlp(act, data, p, s) for s in seeds]
            results["transformer"][act] = [_run_lm(act, corpus, p, s, ctx.quick) for s in seeds]
    figure = ctx.out_dir / "sparsity_vs_step.png"
    _plot(figure, results)
    summary = {kind: {act: {
        "mean_zero_fraction": float(np.mean([r["final"]["mean_zero_fraction"] for r in runs])),
        "mean_small_fraction": float(np.mean([r["final"]["mean_small_fraction"] for r in runs])),
        ("test_accuracy" if kind == "mlp" else "held_out_loss"):
            float(np.mean([r["test_accuracy" if kind == "mlp" else "held_out_loss"] for r in runs])),
    } for act, runs in by_act.items()} for kind, by_act in results.items()}
    return {"settings": p, "seeds": seeds, "eps": 1e-3, "summary": summary, "runs": results, "figure": figure.name}
