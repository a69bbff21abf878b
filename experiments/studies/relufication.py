"""Study ``relufication``: swap a trained GELU Transformer's activations for ReLU and fine-tune briefly.

A character LM (Python sources) is trained with GELU. Copies of it are then
relufied (:func:`ann.sparsity.relufy`) three ways: ReLU, shifted ReLU
(``relu(x - shift)``), and ReLU plus a ReLU after the block norms
(``after_norm=True``, stage 2 of Mirzadeh et al. 2023), and each is
fine-tuned for a few steps. Measured on held-out text, for several seeds:
the loss before the swap, right after it and during fine-tuning (loss
recovery), the FFN activation sparsity (exact zeros; ``|a| <= 1e-3`` for
GELU), and the aggregated sparsity over windows of ``w`` consecutive tokens
(``1 - window_usage[w]``: the fraction of FFN neurons that no token of the
window uses).

Writes ``relufication.png`` (loss recovery; sparsity before/after;
aggregated sparsity vs window length) and ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ann.sparsity import relufy
from ann.text import random_windows
from experiments.config import as_dict, param
from experiments.registry import experiment

from . import sparsity_setup as S

WINDOWS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Config:
    """Seeds, training lengths and the corpus size."""

    seeds: int = param(3, min=1, help="seeds (ctx.seed, ctx.seed + 1, ...)")
    base_steps: int = param(600, min=1, help="training steps of the GELU model")
    finetune_steps: int = param(200, min=1, help="fine-tuning steps of each relufied copy")
    every: int = param(25, min=1, help="measure the held-out loss every this many fine-tuning steps")
    shift: float = param(0.25, help="the shifted ReLU's shift: relu(x - shift)")
    n_chars: int = param(200_000, min=1, help="characters of Python source in the corpus")

    @classmethod
    def quick(cls) -> "Config":
        return cls(seeds=2, base_steps=100, finetune_steps=40, every=10, n_chars=40_000)


def _measure(model, corpus: dict, probe, seed: int) -> dict:
    """Held-out loss, FFN sparsity and aggregated sparsity of ``model``."""
    summary = S.sparsity_of(model, probe, windows=WINDOWS)
    usage = np.mean([[s["window_usage"][w] for w in WINDOWS] for s in summary.values()], axis=0)
    return {"loss": S.lm_loss(model, corpus["held_out"], 32, 48, seed=seed), **S.layer_means(summary),
            "aggregated_sparsity": [float(1 - u) for u in usage]}


def _variants(shift: float) -> dict:
    return {"relu": {"activation": "relu"},
            "shifted_relu": {"activation": "shifted_relu", "shift": shift},
            "relu_after_norm": {"activation": "relu", "after_norm": True}}


def _one_seed(corpus: dict, p: dict, seed: int, quick: bool) -> dict:
    vocab = len(corpus["vocab"])
    base = S.char_lm(vocab, "gelu", quick, seed=seed)
    S.train_lm(base, corpus["train"], p["base_steps"], seed=seed)
    probe, _ = random_windows(corpus["held_out"], 8, 48, seed=1000 + seed)
    out = {"gelu": _measure(base, corpus, probe, 2000 + seed)}
    for name, kwargs in _variants(p["shift"]).items():
        model = S.copy_lm(base, vocab, "gelu", quick)
        changes = relufy(model, **kwargs)
        curve = []
        S.train_lm(model, corpus["train"], p["finetune_steps"], lr=3e-3, seed=seed + 1, every=p["every"],
                   on_eval=lambda step: curve.append((step, S.lm_loss(model, corpus["held_out"], 32, 48, seed=2000 + seed))))
        out[name] = {**_measure(model, corpus, probe, 2000 + seed), "changed": [c["name"] for c in changes],
                     "finetune_steps": [c[0] for c in curve], "finetune_loss": [c[1] for c in curve]}
    return out


def _plot(path, runs: list, variants: list) -> None:
    fig, (ax1, ax2, ax3) = S.figure(3)
    gelu_loss = np.mean([r["gelu"]["loss"] for r in runs])
    ax1.axhline(gelu_loss, color="k", ls="--", lw=1, label="GELU (before)")
    for v in variants:
        ax1.plot(runs[0][v]["finetune_steps"], np.mean([r[v]["finetune_loss"] for r in runs], axis=0), marker="o", ms=3, label=v)
    ax1.set_xlabel("fine-tuning step (0 = right after the swap)")
    ax1.set_ylabel("held-out loss (nats/char)")
    ax1.legend(fontsize=7)
    names = ["gelu"] + variants
    zero = [np.mean([r[n]["mean_zero_fraction"] for r in runs]) for n in names]
    small = [np.mean([r[n]["mean_small_fraction"] for r in runs]) for n in names]
    x = np.arange(len(names))
    ax2.bar(x - 0.2, zero, 0.4, label="exact zeros")
    ax2.bar(x + 0.2, small, 0.4, label="|a| <= 1e-3")
    ax2.set_xticks(x, names, rotation=20, fontsize=7)
    ax2.set_ylabel("FFN activation sparsity")
    ax2.set_ylim(0, 1)
    ax2.legend(fontsize=7)
    for n in names:
        ax3.plot(WINDOWS, np.mean([r[n]["aggregated_sparsity"] for r in runs], axis=0), marker="o", ms=3, label=n)
    ax3.set_xscale("log", base=2)
    ax3.set_xlabel("window length w (tokens)")
    ax3.set_ylabel("aggregated sparsity")
    ax3.set_ylim(-0.02, 1)
    ax3.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


@experiment("relufication", "GELU Transformer relufied (ReLU, shifted ReLU, ReLU after norms) and fine-tuned: loss recovery, sparsity, aggregated sparsity",
            config=Config)
def run(ctx) -> dict:
    p = as_dict(ctx.config)
    corpus = S.text(p["n_chars"], seed=ctx.seed)
    seeds = [ctx.seed + i for i in range(p["seeds"])]
    with S.one_thread():
        runs = [_one_seed(corpus, p, s, ctx.quick) for s in seeds]
    variants = list(_variants(p["shift"]))
    figure = ctx.out_dir / "relufication.png"
    _plot(figure, runs, variants)
    summary = {n: {k: float(np.mean([r[n][k] for r in runs])) for k in ("loss", "mean_zero_fraction", "mean_small_fraction")}
               for n in ["gelu"] + variants}
    for v in variants:
        summary[v]["loss_right_after_swap"] = float(np.mean([r[v]["finetune_loss"][0] for r in runs]))
    return {"settings": p, "seeds": seeds, "windows": list(WINDOWS), "summary": summary, "runs": runs, "figure": figure.name}
