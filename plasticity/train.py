r"""Train a rate population :math:`y = f(W x)` with a local rule over a data stream."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from neuro.backend import array_module, make_rng
from neuro.validation import check_finite, check_int

from .base import Rule, check_weights
from .divergence import DivergenceWatch

__all__ = ["train", "TrainResult", "activation_function"]

_ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu")


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    * ``weights``: the final ``(n_post, n_pre)`` weights (a new array);
    * ``state``: the rule's final state (``None`` for stateless rules);
    * ``history``: ``(R, n_post, n_pre)`` snapshots (the initial weights, then every
      ``record_every`` steps), or ``None`` when ``record_every`` is ``None``;
    * ``steps``: ``(R,)`` the step count of each snapshot (``None`` without history).
    """

    weights: object
    state: object
    history: object
    steps: object


def activation_function(activation) -> Callable:
    """``None``/``"linear"``, ``"tanh"``, ``"sigmoid"``, ``"relu"`` or a callable, as a callable on arrays."""
    if activation is None or activation == "linear":
        return lambda a: a
    if callable(activation):
        return activation
    if activation == "tanh":
        return lambda a: array_module(a).tanh(a)
    if activation == "sigmoid":
        return lambda a: 1.0 / (1.0 + array_module(a).exp(-a))
    if activation == "relu":
        return lambda a: array_module(a).maximum(a, 0.0)
    raise ValueError(f"activation must be None, a callable or one of {_ACTIVATIONS}, got {activation!r}")


def train(rule: Rule, W, X, *, epochs: int = 1, batch_size: int = 1, activation=None, seed=None,
          record_every: int | None = None, state=None, shuffle: bool = True,
          on_nonfinite: str = "raise") -> TrainResult:
    r"""Present the rows of ``X`` to a rate population :math:`y = f(W x)` and apply ``rule`` after each batch.

    Each epoch visits every row of ``X`` once, in an order drawn from
    ``seed`` (``shuffle=False`` keeps the given order), in batches of
    ``batch_size`` rows (the last may be shorter); per batch,
    ``post = f(pre @ W.T)`` and ``rule.step(W, pre, post, state)``.

    Args:
        rule: a rate rule (``Hebb``, ``Oja``, ``Sanger``, ``BCM``, ...).
        W: ``(n_post, n_pre)`` initial weights; not modified (training works on a copy).
        X: ``(N, n_pre)`` the data stream.
        epochs, batch_size: positive ints.
        activation: ``f``: ``None`` (linear), ``"tanh"``, ``"sigmoid"``, ``"relu"`` or a callable.
        seed: int, ``numpy.random.Generator`` or ``None`` (see ``neuro.backend.make_rng``).
        record_every: snapshot the weights every this many steps (``None``: no history).
        state: the rule's starting state (default ``rule.init_state(W.shape)``); it is updated in place.
        on_nonfinite: ``"raise"`` or ``"warn"`` (a ``neuro.NonFiniteWarning``, then train
            anyway) when ``W`` or ``X`` hold NaN or inf (``ValueError``: one such sample makes
            every weight NaN), or when the weights diverge to NaN/inf while training
            (``FloatingPointError`` naming the rule and the step).

    Returns:
        :class:`TrainResult` ``(weights, state, history, steps)``.
    """
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be a plasticity rule (Hebb, Oja, Sanger, BCM, ...), got {type(rule).__name__}")
    if rule.kind != "rate":
        raise TypeError(f"train() drives rate rules; {type(rule).__name__} works on spikes (drive it with rule.step per tick)")
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    record_every = None if record_every is None else check_int(record_every, "record_every")
    f = activation_function(activation)
    xp = array_module(W, X)
    check_weights(W, xp)
    W = W.copy()
    X = xp.asarray(X, dtype=W.dtype)
    if X.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(f"X must have shape (N, {W.shape[1]}) (n_pre = W.shape[1]), got {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError("X must hold at least one sample")
    check_finite(W, "W", on_nonfinite=on_nonfinite)
    check_finite(X, "X", on_nonfinite=on_nonfinite)
    rng = make_rng(seed)
    if state is None:
        state = rule.init_state(W.shape, dtype=W.dtype, like=W)
    history, steps = ([W.copy()], [0]) if record_every else (None, None)
    watch = DivergenceWatch(rule, on_nonfinite)
    n = X.shape[0]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        Xe = X[xp.asarray(order)]
        for start in range(0, n, batch_size):
            pre = Xe[start:start + batch_size]
            post = f(pre @ W.T)
            rule.step(W, pre, post, state)
            step += 1
            watch(W, step)
            if record_every and step % record_every == 0:
                history.append(W.copy())
                steps.append(step)
    if record_every:
        history = xp.stack(history)
        steps = np.asarray(steps)
    return TrainResult(W, state, history, steps)
