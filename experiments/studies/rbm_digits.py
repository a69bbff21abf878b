"""rbm-digits: a restricted Boltzmann machine on binarized digits, and Hopfield capacity, classical vs modern.

RBM part: scikit-learn's bundled 8x8 digits, binarized at half intensity (64 binary
pixels), split 80/20 into train and test. A Bernoulli RBM with 16 hidden units (few
enough that the exact log partition function is a sum over 2**16 hidden states) is
trained three ways from the same initial weights: CD-1, CD-10 and persistent CD
(PCD-1, one persistent chain per mini-batch sample). After every epoch (every second
one with ``--quick``) it records the test set's exact mean log-likelihood and, every
epoch, its mean pseudo-log-likelihood (all 64 conditionals) and the training
reconstruction error.

Hopfield part: random +1/-1 patterns of ``N`` units at loads ``P/N`` from 0.025 to 2;
cues have 20% of their units flipped; a retrieval succeeds when the final state's
overlap with the stored pattern is at least 0.95. The classical network (Hebbian
storage, asynchronous updates) and the modern dense one (one update,
``beta = 1``, then the sign) see the same patterns and cues.

Writes ``filters.png`` (the CD-1 model's 16 filters), ``reconstructions.png`` (one
test digit per class, its mean-field reconstruction and a Gibbs sample),
``pseudo_likelihood.png``, ``log_likelihood.png`` and ``hopfield_capacity.png``;
``results.json`` holds the numbers behind each figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ann.energy import RBM, Hopfield, ModernHopfield, overlap
from experiments.config import param
from experiments.registry import experiment

METHODS = {"CD-1": dict(k=1, persistent=False), "CD-10": dict(k=10, persistent=False),
           "PCD": dict(k=1, persistent=True)}
TRAINING = dict(batch_size=20, lr=0.05, momentum=0.5, weight_decay=1e-4)
N_HIDDEN = 16
LOADS = [0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0]


def binarized_digits(seed: int):
    """``(x_train, x_test, y_test)``: 64 binary pixels (intensity > 8 of 16), an 80/20 shuffled split."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn; imported here to keep `neuro` light

    d = load_digits()
    x = (d.data > 8).astype(np.float64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_train = int(0.8 * len(x))
    return x[order[:n_train]], x[order[n_train:]], d.target[order[n_train:]]


def train_rbms(x_train, x_test, epochs: int, ll_every: int, seed: int) -> tuple[dict, dict]:
    """Train one RBM per method; returns the per-method curves and the trained models."""
    curves, models = {}, {}
    for name, method in METHODS.items():
        rbm = RBM(64, N_HIDDEN, seed=seed)  # the same initial weights for every method
        curve = {"epoch": [0], "pseudo_log_likelihood": [float(rbm.pseudo_log_likelihood(x_test).mean())],
                 "ll_epoch": [0], "log_likelihood": [float(rbm.log_likelihood(x_test).mean())]}

        def record(model, epoch):
            curve["epoch"].append(epoch + 1)
            curve["pseudo_log_likelihood"].append(float(model.pseudo_log_likelihood(x_test).mean()))
            if (epoch + 1) % ll_every == 0 or epoch + 1 == epochs:
                curve["ll_epoch"].append(epoch + 1)
                curve["log_likelihood"].append(float(model.log_likelihood(x_test).mean()))

        hist = rbm.fit(x_train, epochs=epochs, seed=seed + 1, callback=record, **method, **TRAINING)
        curve["reconstruction_error"] = hist["reconstruction_error"]
        curves[name], models[name] = curve, rbm
    return curves, models


def hopfield_capacity(n_units: int, max_probes: int, seed: int) -> dict:
    """Retrieval success rate per load, classical and modern, from 20%-corrupted cues."""
    rng = np.random.default_rng(seed)
    out = {"n_units": n_units, "loads": LOADS, "classical": [], "modern": [], "probes": []}
    for load in LOADS:
        P = max(1, int(round(load * n_units)))
        hits = {"classical": [], "modern": []}
        for _ in range(-(-max_probes // P)):  # fresh pattern sets until max_probes cues were tried
            patterns = rng.choice([-1.0, 1.0], (P, n_units))
            probe = rng.choice(P, min(P, max_probes), replace=False)
            cues = patterns[probe].copy()
            for row in cues:
                row[rng.choice(n_units, n_units // 5, replace=False)] *= -1
            classical = Hopfield(n_units).store(patterns).recall(cues, seed=rng)
            modern = np.sign(ModernHopfield(patterns, beta=1.0).retrieve(cues))
            hits["classical"].extend(overlap(classical, patterns[probe]) >= 0.95)
            hits["modern"].extend(overlap(modern, patterns[probe]) >= 0.95)
        for kind in ("classical", "modern"):
            out[kind].append(float(np.mean(hits[kind])))
        out["probes"].append(len(hits["classical"]))
    return out


def _tiles(images: np.ndarray, cols: int) -> np.ndarray:
    """8x8 images ``(n, 64)`` in a grid with one blank pixel between them."""
    rows = -(-len(images) // cols)
    grid = np.full((rows * 9 - 1, cols * 9 - 1), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * 9:r * 9 + 8, c * 9:c * 9 + 8] = img.reshape(8, 8)
    return grid


def write_figures(out_dir, filters, recon: dict, curves: dict, capacity: dict) -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = []

    def save(fig, name):
        FigureCanvasAgg(fig)
        fig.savefig(out_dir / name, dpi=100)
        names.append(name)

    fig = Figure(figsize=(4.5, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    scale = np.abs(filters).max()
    ax.imshow(_tiles(filters, 4), cmap="RdBu_r", vmin=-scale, vmax=scale)
    ax.set_axis_off()
    ax.set_title("CD-1 filters (rows of W, 8x8)", fontsize=9)
    save(fig, "filters.png")

    fig = Figure(figsize=(7, 2.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(_tiles(np.concatenate([recon["original"], recon["reconstruction"], recon["gibbs_sample"]]), 10),
              cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title("test digits / mean-field reconstructions / one Gibbs step (CD-1 model)", fontsize=9)
    save(fig, "reconstructions.png")

    for key, x_key, fname, ylabel in (("pseudo_log_likelihood", "epoch", "pseudo_likelihood.png",
                                       "test pseudo-log-likelihood (nats)"),
                                      ("log_likelihood", "ll_epoch", "log_likelihood.png",
                                       "exact test log-likelihood (nats)")):
        fig = Figure(figsize=(5, 3.5))
        fig.subplots_adjust(left=0.17, bottom=0.14)
        ax = fig.add_subplot(1, 1, 1)
        for name, c in curves.items():
            ax.plot(c[x_key], c[key], marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
        save(fig, fname)

    fig = Figure(figsize=(5, 3.5))
    fig.subplots_adjust(left=0.14, bottom=0.14)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(capacity["loads"], capacity["classical"], marker="o", label="classical (Hebbian, async)")
    ax.plot(capacity["loads"], capacity["modern"], marker="s", label="modern dense (beta = 1)")
    ax.axvline(0.138, color="0.6", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(f"load P/N (N = {capacity['n_units']})")
    ax.set_ylabel("retrieval success (20% corrupted cues)")
    ax.legend(fontsize=8)
    save(fig, "hopfield_capacity.png")
    return names


@dataclass(frozen=True)
class Config:
    """The RBMs' training length."""

    epochs: int = param(30, min=1, help="training epochs of each RBM")

    @classmethod
    def quick(cls) -> "Config":
        return cls(epochs=10)


@experiment("rbm-digits", "RBM on binarized digits (CD-1 vs CD-10 vs PCD, exact log-likelihood) and Hopfield capacity",
            config=Config)
def run(ctx) -> dict:
    epochs = ctx.config.epochs
    x_train, x_test, y_test = binarized_digits(ctx.seed)
    curves, models = train_rbms(x_train, x_test, epochs, 2 if ctx.quick else 1, ctx.seed)
    cd1 = models["CD-1"]
    shown = np.array([np.flatnonzero(y_test == d)[0] for d in range(10)])
    recon = {"test_index": shown, "original": x_test[shown], "reconstruction": cd1.reconstruct(x_test[shown]),
             "gibbs_sample": cd1.gibbs(x_test[shown], k=1, seed=ctx.seed)}
    capacity = hopfield_capacity(100 if ctx.quick else 200, 50 if ctx.quick else 200, ctx.seed)
    figures = write_figures(ctx.out_dir, cd1.W, recon, curves, capacity)
    return {
        "data": {"train": len(x_train), "test": len(x_test), "pixels": 64, "binarized_at": "intensity > 8 of 16"},
        "rbm": {"n_hidden": N_HIDDEN, "epochs": epochs, **TRAINING},
        "final": {name: {"test_log_likelihood": c["log_likelihood"][-1],
                         "test_pseudo_log_likelihood": c["pseudo_log_likelihood"][-1],
                         "reconstruction_error": c["reconstruction_error"][-1]} for name, c in curves.items()},
        "curves": curves,
        "filters": cd1.W,
        "reconstructions": recon,
        "hopfield_capacity": capacity,
        "figures": figures,
    }
