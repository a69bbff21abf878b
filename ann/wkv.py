"""RWKV-4's WKV operator ("time mixing" attention with exponential decay).

For channel ``c`` with log-decay ``w < 0`` per step and bonus ``u``::

    wkv[t] = (sum_{i<t} e^{(t-1-i) w + k[i]} v[i] + e^{u + k[t]} v[t])
           / (sum_{i<t} e^{(t-1-i) w + k[i]}      + e^{u + k[t]})

i.e. a softmax-weighted average of the values, with logits that decay with
distance. Two forms, equal to each other and both differentiable:

* :func:`wkv_recurrent`: constant-size state (numerator ``a``, denominator
  ``b`` and the running maximum exponent ``p``, which keeps every ``exp``
  argument <= 0 so large keys never overflow) - the inference form;
* :func:`wkv_parallel`: all ``T x T`` logits at once through a stable
  softmax - the training form.

Shapes: ``k``, ``v`` are ``(B, T, C)``; ``w`` and ``u`` are ``(C,)``; the
output is ``(B, T, C)``. ``w`` here is the per-step log-decay (RWKV-4 code
uses ``w = -exp(time_decay)``).
"""

from __future__ import annotations

import numpy as np

from .activations import softmax
from .tensor import Tensor, as_tensor, maximum, stack, where

__all__ = ["wkv_recurrent", "wkv_parallel"]


def _check(w: Tensor, u: Tensor, k: Tensor, v: Tensor) -> None:
    if k.ndim != 3 or v.shape != k.shape:
        raise ValueError(f"k and v must both be (B, T, C); got {k.shape} and {v.shape}")
    if w.shape != (k.shape[-1],) or u.shape != (k.shape[-1],):
        raise ValueError(f"w and u must be (C,) = ({k.shape[-1]},); got {w.shape} and {u.shape}")


def wkv_recurrent(w, u, k, v, state=None, return_state: bool = False):
    """WKV by the recurrence with state ``(a, b, p)``, each ``(B, C)``.

    ``state`` (optional) continues from an earlier call's returned state.
    """
    w, u, k, v = (as_tensor(x) for x in (w, u, k, v))
    _check(w, u, k, v)
    batch, steps, channels = k.shape
    if state is None:
        zero = k.xp.zeros((batch, channels), dtype=k.dtype)
        a, b, p = as_tensor(zero), as_tensor(zero), as_tensor(np.full((batch, channels), -np.inf, dtype=k.dtype))
    else:
        a, b, p = state
    outputs = []
    for t in range(steps):
        kt, vt = k[:, t], v[:, t]
        bonus = u + kt
        q = maximum(p, bonus)
        e1, e2 = _exp_shifted(p, q), (bonus - q).exp()
        outputs.append((e1 * a + e2 * vt) / (e1 * b + e2))
        decayed = p + w
        q = maximum(decayed, kt)
        e1, e2 = _exp_shifted(decayed, q), (kt - q).exp()
        a, b, p = e1 * a + e2 * vt, e1 * b + e2, q
    out = stack(outputs, axis=1)
    return (out, (a, b, p)) if return_state else out


def _exp_shifted(x: Tensor, q: Tensor) -> Tensor:
    """``exp(x - q)``, 0 where ``x`` is ``-inf`` (the empty initial state), without NaN gradients."""
    finite = np.isfinite(x.data) if x.xp is np else x.xp.isfinite(x.data)
    return where(finite, where(finite, x, 0.0) - q, -np.inf).exp()


def wkv_parallel(w, u, k, v) -> Tensor:
    """WKV for all steps at once via a ``(B, T, T, C)`` stable softmax."""
    w, u, k, v = (as_tensor(x) for x in (w, u, k, v))
    _check(w, u, k, v)
    xp = k.xp
    steps = k.shape[1]
    t, i = xp.arange(steps)[:, None], xp.arange(steps)[None, :]
    distance = xp.asarray(np.maximum(t - i - 1, 0), dtype=k.dtype)[None, :, :, None]  # (1, T, T, 1)
    past = (i < t)[None, :, :, None]
    diagonal = (i == t)[None, :, :, None]
    keys = k.reshape(k.shape[0], 1, steps, k.shape[2])  # k[i] along axis 2
    logits = where(past, keys + w * distance, where(diagonal, keys + u, -np.inf))
    weights = softmax(logits, axis=2)
    return (weights * v.reshape(v.shape[0], 1, steps, v.shape[2])).sum(axis=2)
