"""Shared pieces of the sparsity studies: data, models, training loops, timing and figures.

* digits: scikit-learn's 8x8 digits, standardized, a fixed train/test split;
* character LM: :func:`ann.text.char_corpus` (Python standard-library sources),
  the first 90% for training, the rest held out;
* models: MLPs whose hidden activations are modules (so hooks and
  :func:`ann.sparsity.relufy` reach them) and :class:`ann.nn.TransformerLM`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import numpy as np

from ann import Tensor, nn, no_grad
from ann.losses import cross_entropy
from ann.optim import SGD, Adam
from ann.sparsity import SparsityRecorder
from ann.text import char_corpus, random_windows
from ann.train import accuracy, train_val_test_split
from neuro.backend import make_rng

from ..timing import alternate

GATED = ("swiglu", "reglu", "geglu", "glu")


# ------------------------------------------------------------------ data


def digits(seed: int = 0) -> dict:
    """``{"x_train", "y_train", "x_test", "y_test"}``: 8x8 digits (float32, standardized by the training set)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    split = train_val_test_split(data.data.astype(np.float32), data.target, val_fraction=0.0, test_fraction=0.25, seed=seed)
    (x_tr, y_tr), (x_te, y_te) = split.train, split.test
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1.0
    return {"x_train": (x_tr - mean) / std, "y_train": y_tr, "x_test": (x_te - mean) / std, "y_test": y_te}


def text(n_chars: int, seed: int = 0) -> dict:
    """``{"train", "held_out", "vocab"}``: character ids of Python sources, split 90/10."""
    ids, vocab = char_corpus(n_chars, seed=seed)
    cut = int(0.9 * ids.size)
    return {"train": ids[:cut], "held_out": ids[cut:], "vocab": vocab}


# ---------------------------------------------------------------- models


def activation_module(name: str) -> nn.Module:
    """A fresh activation module for a registry name (``"prelu"``: a learnable :class:`~ann.nn.PReLU`)."""
    return nn.PReLU() if name == "prelu" else nn.Activation(name)


def mlp(activation: str, sizes=(64, 64, 64, 10), seed=0, bias_init: float | None = None) -> nn.Sequential:
    """``Linear -> act -> ... -> Linear``; a gated activation doubles the Linear before it.

    ``bias_init`` sets every hidden bias to that constant (the dying-ReLU study's knob).
    """
    rng = make_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = i < len(sizes) - 2
        lin = nn.Linear(a, 2 * b if hidden and activation in GATED else b, seed=rng)
        if hidden and bias_init is not None:
            lin.bias.data[:] = bias_init
        layers.append(lin)
        if hidden:
            layers.append(activation_module(activation))
    return nn.Sequential(*layers)


def char_lm(vocab_size: int, activation: str, quick: bool, seed=0) -> nn.TransformerLM:
    """A small causal Transformer LM (d_model 32/48, 2 layers, FFN 4x)."""
    d = 32 if quick else 48
    return nn.TransformerLM(vocab_size, d_model=d, nhead=4, num_layers=2, max_len=64, activation=activation, seed=seed)


def copy_lm(model: nn.TransformerLM, vocab_size: int, activation: str, quick: bool) -> nn.TransformerLM:
    """A new :func:`char_lm` holding ``model``'s weights (copied)."""
    twin = char_lm(vocab_size, activation, quick)
    twin.load_state_dict(model.state_dict())
    return twin


# -------------------------------------------------------------- training


def sparsity_of(model, x, eps: float = 1e-3, windows=(), active: str = "nonzero") -> dict:
    """The recorder's summary of one forward pass of ``model`` on ``x`` (no gradients)."""
    with SparsityRecorder(model, eps=eps, windows=windows, active=active) as rec, no_grad():
        model(x)
    return rec.summary()


def layer_means(summary: dict) -> dict:
    """Per-site ``zero_fraction`` and ``small_fraction`` lists, and their means."""
    zero = [s["zero_fraction"] for s in summary.values()]
    small = [s["small_fraction"] for s in summary.values()]
    return {"sites": list(summary), "zero_fraction": zero, "small_fraction": small,
            "mean_zero_fraction": float(np.mean(zero)), "mean_small_fraction": float(np.mean(small))}


def train_classifier(model, data: dict, steps: int, lr: float, batch: int = 64, seed=0, optimizer: str = "adam",
                     every: int = 0, on_eval: Callable | None = None) -> dict:
    """Mini-batch training with cross-entropy; stops early if the loss is not finite.

    ``on_eval(step)`` is called at step 0, every ``every`` steps and at the end.
    Returns ``{"test_accuracy", "final_loss", "diverged", "steps"}``.
    """
    rng = make_rng(seed)
    opt = (Adam if optimizer == "adam" else SGD)(model.parameters(), lr=lr)
    x, y = data["x_train"], data["y_train"]
    loss_value, diverged, step = float("nan"), False, 0
    for step in range(steps):
        if on_eval and every and step % every == 0:
            on_eval(step)
        idx = rng.integers(0, len(x), batch)
        loss = cross_entropy(model(Tensor(x[idx])), y[idx])
        loss_value = loss.item()
        if not np.isfinite(loss_value):
            diverged = True
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    if on_eval:
        on_eval(steps)
    with no_grad():
        acc = accuracy(model(Tensor(data["x_test"])), data["y_test"])
    return {"test_accuracy": float(acc), "final_loss": loss_value, "diverged": diverged, "steps": step + 1}


def lm_loss(model, ids, batch: int, length: int, seed) -> float:
    """Cross-entropy (nats/char) on ``batch`` random windows of ``ids`` (no gradients)."""
    x, y = random_windows(ids, batch, length, seed=seed)
    with no_grad():
        return float(cross_entropy(model(x).reshape(-1, model.vocab_size), y.reshape(-1)).item())


def train_lm(model, train_ids, steps: int, lr: float = 1e-2, batch: int = 16, length: int = 48, seed=0,
             every: int = 0, on_eval: Callable | None = None) -> list:
    """Adam on random windows; ``on_eval(step)`` as in :func:`train_classifier`. Returns the training losses."""
    rng = make_rng(seed)
    opt = Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        if on_eval and every and step % every == 0:
            on_eval(step)
        x, y = random_windows(train_ids, batch, length, seed=rng)
        loss = cross_entropy(model(x).reshape(-1, model.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    if on_eval:
        on_eval(steps)
    return losses


# ---------------------------------------------------------------- timing


@contextmanager
def one_thread():
    """BLAS and numba on one thread inside the block: these models are small, and a second BLAS
    thread only spins (8x the CPU time of the character LM on the 2-core development machine);
    timings then compare one thread with one thread."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


def alternated_medians(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Median wall time (s) of each function, run in turn ``repeats`` times (noise hits all alike)."""
    return {k: float(np.median(v)) for k, v in alternate(fns, repeats, warmup=warmup).items()}


# --------------------------------------------------------------- figures


def figure(n_panels: int, width: float = 4.2, height: float = 3.2):
    """A matplotlib Figure (Agg) with ``n_panels`` axes in a row: ``(fig, axes)``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]
    return fig, axes
