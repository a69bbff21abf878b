"""Study ``sparse-inference``: wall-clock of dense vs sparse single-token inference, against the ideal.

At the benchmark size (F = 4096 hidden, D = 1024 model width, float32, one
token) and sparsity s in 0, 50, 70, 90, 95, 99%:

* ``gather_matmul(h, W_t)`` vs the dense ``h @ W_t`` (ideal speedup ``1/(1-s)``);
* :class:`ann.sparse.SparseFFN` vs the dense FFN ``Linear -> ReLU -> Linear``
  (``linear1`` stays dense, so the ideal is ``2/(2-s)``), and the ReLU-gated
  GLU (ideal ``3/(3-2s)``: only the gate half of ``linear1`` stays dense).

The hidden activations are made exactly s-sparse (for the FFNs, by setting
``linear1``'s bias for a fixed input). Then a small ReLU character LM is
trained and its real FFN sparsity on held-out tokens is measured; the same
timings are taken at that sparsity, and its own (small, overhead-bound)
blocks are timed too. Timings are alternated medians with BLAS and numba on one
thread (``BENCHMARKS.md`` has the default-threads figures).

Writes ``speedup.png`` (measured speedup vs sparsity, with the ideal curves
and the trained model's sparsity marked) and ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ann import Tensor, nn, no_grad
from ann.sparse import SparseFFN
from ann.text import random_windows
from experiments.config import as_dict, param
from experiments.registry import experiment
from neuro.kernels import gather_matmul

from . import sparsity_setup as S

SPARSITIES = [0.0, 0.5, 0.7, 0.9, 0.95, 0.99]


@dataclass(frozen=True)
class Config:
    """Timing repeats, the trained model's training, and the benchmark size."""

    repeats: int = param(61, min=1, help="timed repeats per measurement (alternated, median)")
    lm_steps: int = param(600, min=1, help="training steps of the ReLU character LM")
    n_chars: int = param(200_000, min=1, help="characters of Python source in the corpus")
    windows: int = param(8, min=1, help="held-out windows of 48 tokens the real sparsity is measured on")
    F: int = param(4096, min=1, help="FFN hidden width of the benchmark")
    D: int = param(1024, min=1, help="model width of the benchmark")

    @classmethod
    def quick(cls) -> "Config":
        return cls(repeats=15, lm_steps=100, n_chars=40_000, windows=2)


def _sparse_vector(F: int, sparsity: float, rng) -> np.ndarray:
    h = np.abs(rng.standard_normal(F)).astype(np.float32) + 0.1
    h[rng.permutation(F)[: int(round(sparsity * F))]] = 0
    return h


def _ffn(F: int, D: int, gated: bool, sparsity: float, x: np.ndarray, rng) -> nn.Sequential:
    """``Linear(D, F or 2F) -> ReLU/ReGLU -> Linear(F, D)`` whose hidden activation on ``x`` is exactly ``sparsity``-sparse."""
    model = nn.Sequential(nn.Linear(D, 2 * F if gated else F, seed=rng), nn.Activation("reglu" if gated else "relu"),
                          nn.Linear(F, D, seed=rng))
    lin1 = model[0]
    gate = slice(F, 2 * F) if gated else slice(0, F)
    pre = x @ lin1.weight.data[gate].T
    active = np.ones(F, bool)
    active[rng.permutation(F)[: int(round(sparsity * F))]] = False
    lin1.bias.data[gate] = -pre + np.where(active, 1.0, -1.0).astype(np.float32)
    return model


def time_kernel(F: int, D: int, sparsity: float, repeats: int, rng) -> dict:
    w_t = rng.standard_normal((F, D)).astype(np.float32)
    h = _sparse_vector(F, sparsity, rng)
    t = S.alternated_medians({"dense": lambda: h @ w_t, "sparse": lambda: gather_matmul(h, w_t)}, repeats)
    return {"dense_s": t["dense"], "sparse_s": t["sparse"], "speedup": t["dense"] / t["sparse"]}


def time_ffn(F: int, D: int, gated: bool, sparsity: float, repeats: int, rng) -> dict:
    x = rng.standard_normal((1, D)).astype(np.float32)
    dense = _ffn(F, D, gated, sparsity, x, rng)
    sparse = SparseFFN.from_block(dense)
    xt = Tensor(x)
    with no_grad():
        t = S.alternated_medians({"dense": lambda: dense(xt), "sparse": lambda: sparse(xt)}, repeats)
    return {"dense_s": t["dense"], "sparse_s": t["sparse"], "speedup": t["dense"] / t["sparse"], "density": sparse.last_density}


def _trained_model(p: dict, seed: int, quick: bool) -> tuple:
    corpus = S.text(p["n_chars"], seed=seed)
    model = S.char_lm(len(corpus["vocab"]), "relu", quick, seed=seed)
    S.train_lm(model, corpus["train"], p["lm_steps"], seed=seed)
    probe, _ = random_windows(corpus["held_out"], p["windows"], 48, seed=seed + 1)  # windows of 48 held-out tokens
    summary = S.sparsity_of(model, probe)
    return model, probe, {site: s["zero_fraction"] for site, s in summary.items()}


def _time_own_blocks(model, probe, repeats: int) -> dict:
    """Single tokens through the trained model's own FFNs (inputs: its real normalized hidden states)."""
    out = {}
    for name, block in zip(["block0", "block1"], model.blocks()):
        captured = {}
        handle = block.linear1.register_forward_pre_hook(lambda m, a: captured.setdefault("x", a[0].numpy().copy()))
        with no_grad():
            model(probe)
        handle.remove()
        tokens = captured["x"].reshape(-1, captured["x"].shape[-1])
        sparse = SparseFFN.from_block(block)
        xs = [Tensor(t[None]) for t in tokens[:16]]
        with no_grad():
            t = S.alternated_medians({"dense": lambda: [block.feedforward(x) for x in xs],
                                      "sparse": lambda: [sparse(x) for x in xs]}, repeats)
        out[name] = {"dense_s_per_token": t["dense"] / len(xs), "sparse_s_per_token": t["sparse"] / len(xs),
                     "speedup": t["dense"] / t["sparse"], "hidden": sparse.hidden}
    return out


def _plot(path, sweep: dict, real: dict, real_s: float, F: int, D: int) -> None:
    fig, (ax,) = S.figure(1, width=5.5, height=4.0)
    s = np.linspace(0, 0.99, 200)
    ideals = {"gather_matmul": 1 / (1 - s), "SparseFFN (ReLU)": 2 / (2 - s), "SparseFFN (ReGLU)": 3 / (3 - 2 * s)}
    for (label, ideal), color in zip(ideals.items(), ("C0", "C1", "C2")):
        ax.plot(s, ideal, color=color, ls=":", lw=1)
        ax.plot(SPARSITIES, [r["speedup"] for r in sweep[label]], color=color, marker="o", label=f"{label} (dotted: ideal)")
        ax.plot([real_s], [real[label]["speedup"]], color=color, marker="*", ms=12, ls="none")
    ax.axhline(1, color="0.6", lw=0.8)
    ax.axvline(real_s, color="0.6", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("activation sparsity (star: trained ReLU model's)")
    ax.set_ylabel("speedup over dense (single token)")
    ax.set_title(f"F={F}, D={D}, float32, one thread", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _all_timings(p: dict, sparsity: float, rng) -> dict:
    F, D, repeats = p["F"], p["D"], p["repeats"]
    return {"gather_matmul": time_kernel(F, D, sparsity, repeats, rng),
            "SparseFFN (ReLU)": time_ffn(F, D, False, sparsity, repeats, rng),
            "SparseFFN (ReGLU)": time_ffn(F, D, True, sparsity, repeats, rng)}


@experiment("sparse-inference", "dense vs gather_matmul / SparseFFN single-token wall-clock vs sparsity, at a trained ReLU model's sparsity, vs the ideal",
            config=Config)
def run(ctx) -> dict:
    p = as_dict(ctx.config)
    rng = np.random.default_rng(ctx.seed)
    with S.one_thread():
        by_s = [_all_timings(p, s, rng) for s in SPARSITIES]
        model, probe, real_sites = _trained_model(p, ctx.seed, ctx.quick)
        real_s = float(np.mean(list(real_sites.values())))
        real = _all_timings(p, real_s, rng)
        own = _time_own_blocks(model, probe, p["repeats"])
    sweep = {k: [t[k] for t in by_s] for k in by_s[0]}
    figure = ctx.out_dir / "speedup.png"
    _plot(figure, sweep, real, real_s, p["F"], p["D"])
    return {"settings": p, "F": p["F"], "D": p["D"], "dtype": "float32", "sparsities": SPARSITIES,
            "ideal": {"gather_matmul": [1 / (1 - s) for s in SPARSITIES], "SparseFFN (ReLU)": [2 / (2 - s) for s in SPARSITIES],
                      "SparseFFN (ReGLU)": [3 / (3 - 2 * s) for s in SPARSITIES]},
            "sweep": sweep, "trained_model_sparsity": {"per_site": real_sites, "mean": real_s},
            "at_trained_sparsity": real, "trained_model_own_blocks": own, "figure": figure.name}
