"""Training utilities: deterministic splits, a mini-batch loader, metrics, early stopping and ``fit``.

Data are plain arrays with a leading sample axis: inputs ``(N, ...)`` and
targets ``(N,)`` (integer classes) or ``(N, ...)``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from neuro.backend import array_module, asnumpy

from .generator import make_rng
from .tensor import Tensor, no_grad
from .warnings import NonFiniteLossWarning

__all__ = [
    "Split",
    "train_val_test_split",
    "DataLoader",
    "accuracy",
    "top_k_accuracy",
    "EarlyStopping",
    "History",
    "fit",
    "evaluate",
    "predict",
]


@dataclass(frozen=True)
class Split:
    """Three tuples of arrays (one entry per array given to :func:`train_val_test_split`)."""

    train: tuple
    val: tuple
    test: tuple


def _check_arrays(arrays) -> int:
    if not arrays:
        raise ValueError("give at least one array")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"all arrays must have the same length along axis 0; array 0 has {n}, array {i} has {len(a)}")
    return n


def train_val_test_split(*arrays, val_fraction: float = 0.1, test_fraction: float = 0.2, shuffle: bool = True, seed=0) -> Split:
    """Split arrays along axis 0 into train / validation / test parts, deterministically from ``seed``.

    The test part gets ``round(test_fraction * N)`` samples, validation
    ``round(val_fraction * N)``, training the rest (at least one).
    """
    n = _check_arrays(arrays)
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    n_test = int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    if n - n_test - n_val < 1:
        raise ValueError(f"val_fraction + test_fraction leave no training samples out of {n}")
    order = make_rng(seed).permutation(n) if shuffle else np.arange(n)
    test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]

    def take(idx):
        return tuple(a[array_module(a).asarray(idx)] for a in arrays)

    return Split(take(train_idx), take(val_idx), take(test_idx))


class DataLoader:
    """Mini-batches of ``arrays`` (same length along axis 0), as tuples of arrays.

    With ``shuffle`` the order is redrawn every epoch from a stream seeded by
    ``seed`` (so two loaders with the same seed give the same batches).
    ``drop_last`` drops a final incomplete batch.
    """

    def __init__(self, *arrays, batch_size: int = 32, shuffle: bool = False, drop_last: bool = False, seed=None):
        self.n = _check_arrays(arrays)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = make_rng(seed)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        order = self.rng.permutation(self.n) if self.shuffle else None
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.n)
            if order is None:
                yield tuple(a[lo:hi] for a in self.arrays)
            else:
                idx = order[lo:hi]
                yield tuple(a[array_module(a).asarray(idx)] for a in self.arrays)


def _values(x):
    return asnumpy(x.data if isinstance(x, Tensor) else x)


def accuracy(output, target) -> float:
    """Fraction of correct predictions.

    ``output`` ``(N, C)`` scores (argmax taken) with integer ``target`` ``(N,)``, or
    ``output`` ``(N,)`` probabilities / logits... for binary targets in {0, 1}: a
    prediction is 1 where ``output > 0.5`` (pass probabilities).
    """
    out, t = _values(output), _values(target)
    if out.ndim == t.ndim + 1:
        pred = out.argmax(axis=-1)
    elif out.shape == t.shape:
        pred = (out > 0.5).astype(t.dtype)
    else:
        raise ValueError(f"accuracy: output shape {out.shape} does not fit target shape {t.shape}")
    return float((pred == t).mean()) if t.size else float("nan")


def top_k_accuracy(output, target, k: int = 5) -> float:
    """Fraction of samples whose target is among the ``k`` highest scores of ``output`` ``(N, C)``."""
    out, t = _values(output), _values(target)
    if out.ndim != 2 or t.shape != (out.shape[0],):
        raise ValueError(f"top_k_accuracy needs output (N, C) and target (N,), got {out.shape} and {t.shape}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= out.shape[1]:
        raise ValueError(f"k must be in [1, {out.shape[1]}] (the number of classes), got {k}")
    top = np.argpartition(-out, k - 1, axis=1)[:, :k]
    return float((top == t[:, None]).any(axis=1).mean())


class EarlyStopping:
    """Stop when the monitored validation loss has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best`` the model's best parameters are copied back at the end of :func:`fit`.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience, self.min_delta, self.restore_best = int(patience), float(min_delta), restore_best
        self.best = math.inf
        self.best_epoch = -1
        self.best_state: dict | None = None
        self.wait = 0

    def update(self, value: float, epoch: int, model=None) -> bool:
        """Record this epoch's ``value``; returns True when training should stop."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best and model is not None:
                self.best_state = {k: v.copy() for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        return self.wait > self.patience


@dataclass
class History:
    """Per-epoch records: ``history["loss"]``, ``history["val_loss"]``, ``history["val_accuracy"]``, ..."""

    history: dict = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_epoch: int | None = None

    def __getitem__(self, key: str) -> list:
        return self.history[key]

    def record(self, key: str, value: float) -> None:
        self.history.setdefault(key, []).append(float(value))

    @property
    def epochs(self) -> int:
        return len(self.history.get("loss", []))


def _as_input(x):
    if isinstance(x, Tensor):
        return x
    return Tensor(x)


def predict(model: Callable, x, batch_size: int = 256) -> np.ndarray:
    """``model`` outputs for ``x`` in eval mode without a graph, concatenated (a NumPy/CuPy array)."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        outs = []
        with no_grad():
            for (xb,) in DataLoader(x, batch_size=batch_size):
                outs.append(model(_as_input(xb)).data)
        return array_module(*outs).concatenate(outs, axis=0)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()


def evaluate(model: Callable, loss_fn: Callable, x, y, batch_size: int = 256, metrics: dict | None = None) -> dict:
    """Mean loss (weighted by batch size) and ``metrics`` on ``(x, y)``, in eval mode."""
    out = predict(model, x, batch_size)
    with no_grad():
        result = {"loss": float(loss_fn(Tensor(out), y).item())}
    for name, fn in (metrics or {}).items():
        result[name] = fn(out, y)
    return result


def fit(
    model,
    loss_fn: Callable,
    optimizer,
    train: Sequence,
    val: Sequence | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    shuffle: bool = True,
    drop_last: bool = False,
    seed=0,
    metrics: dict | None = None,
    scheduler=None,
    early_stopping: EarlyStopping | None = None,
    clip_norm: float | None = None,
    callback: Callable[[int, dict], Any] | None = None,
) -> History:
    """Train ``model`` with mini-batches of ``train = (x, y)``; returns the :class:`History`.

    Each epoch: shuffle (from ``seed``), for each batch ``loss_fn(model(x), y)``,
    backward, optional clipping to global norm ``clip_norm``, ``optimizer.step()``;
    then ``scheduler.step()`` if given, and the validation loss/metrics on ``val``.
    ``history["loss"]`` is the mean training loss over the epoch's samples.
    ``early_stopping`` watches ``val_loss`` (``val`` is then required).
    A non-finite training loss stops training with a :class:`~ann.warnings.NonFiniteLossWarning`.
    """
    from .optim.clip import clip_grad_norm_

    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if early_stopping is not None and val is None:
        raise ValueError("early_stopping needs val=(x_val, y_val)")
    x, y = train
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    history = History()
    metrics = metrics or {}
    params = model.parameters() if hasattr(model, "parameters") else None
    for epoch in range(epochs):
        if hasattr(model, "train"):
            model.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(_as_input(xb)), yb)
            loss.backward()
            if clip_norm is not None and params is not None:
                clip_grad_norm_(params, clip_norm)
            optimizer.step()
            total += float(loss.item()) * len(xb)
            count += len(xb)
        history.record("loss", total / max(count, 1))
        if not math.isfinite(history["loss"][-1]):
            warnings.warn(
                f"the training loss became {history['loss'][-1]} in epoch {epoch}; training stopped "
                "(lower the learning rate or check the data)",
                NonFiniteLossWarning,
                stacklevel=2,
            )
            history.stopped_epoch = epoch
            break
        if metrics:
            train_eval = {name: fn(predict(model, x), y) for name, fn in metrics.items()}
            for name, v in train_eval.items():
                history.record(name, v)
        if scheduler is not None:
            scheduler.step()
        if val is not None:
            res = evaluate(model, loss_fn, val[0], val[1], metrics=metrics)
            for name, v in res.items():
                history.record(f"val_{name}", v)
            if early_stopping is not None and early_stopping.update(res["loss"], epoch, model):
                history.stopped_epoch = epoch
                break
        if callback is not None:
            callback(epoch, {k: v[-1] for k, v in history.history.items()})
    if early_stopping is not None:
        history.best_epoch = early_stopping.best_epoch
        if early_stopping.restore_best and early_stopping.best_state is not None:
            model.load_state_dict(early_stopping.best_state)
    return history
