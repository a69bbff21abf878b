r"""Hebbian outer-product storage (Hopfield 1982), usable on its own.

For :math:`P` patterns :math:`\xi^\mu \in \{-1, +1\}^N` (rows of ``patterns``),

.. math::
    W = \frac{1}{N} \sum_{\mu=1}^{P} \xi^\mu (\xi^\mu)^T, \qquad W_{ii} = 0 \text{ (zero_diagonal)}

which is the plain Hebb rule (``Hebb(lr=P/N)``) applied once to the batch of
all patterns with ``pre = post = patterns``. With :math:`P \lesssim 0.138 N`
random patterns each is (nearly) a fixed point of :math:`s \leftarrow \mathrm{sign}(W s)`.
"""

from __future__ import annotations

from neuro.backend import array_module, resolve_dtype

__all__ = ["hebbian_storage", "recall"]


def hebbian_storage(patterns, *, zero_diagonal: bool = True, scale: str = "n", W=None, dtype=None):
    r"""The outer-product weights ``(N, N)`` storing ``patterns`` ``(P, N)``.

    Args:
        patterns: ``(P, N)`` (or ``(N,)`` for one pattern), usually :math:`\pm 1`.
        zero_diagonal: set :math:`W_{ii} = 0` (no self-coupling).
        scale: ``"n"`` divides by :math:`N` (Hopfield), ``"p"`` by :math:`P`, ``"none"`` not at all.
        W: existing ``(N, N)`` weights to add to (incremental storage, in place), or ``None``.
        dtype: of a new matrix (default float64).

    Returns:
        the weights (``W`` itself when given).
    """
    xp = array_module(patterns, W)
    xi = xp.asarray(patterns)
    if xi.ndim == 1:
        xi = xi[None, :]
    if xi.ndim != 2 or xi.shape[0] < 1 or xi.shape[1] < 1:
        raise ValueError(f"patterns must have shape (P, N) with P, N >= 1, got {tuple(xp.asarray(patterns).shape)}")
    if scale not in ("n", "p", "none"):
        raise ValueError(f"scale must be 'n', 'p' or 'none', got {scale!r}")
    if not isinstance(zero_diagonal, bool):
        raise TypeError(f"zero_diagonal must be a bool, got {type(zero_diagonal).__name__}")
    P, N = xi.shape
    dt = resolve_dtype(dtype if dtype is not None else (W.dtype if W is not None else None))
    xi = xi.astype(dt, copy=False)
    dW = xi.T @ xi
    dW /= {"n": N, "p": P, "none": 1}[scale]
    if zero_diagonal:
        dW[xp.arange(N), xp.arange(N)] = 0.0
    if W is None:
        return dW
    if tuple(W.shape) != (N, N):
        raise ValueError(f"W must have shape ({N}, {N}) to store patterns of length {N}, got {tuple(W.shape)}")
    W += dW
    return W


def recall(W, probe, *, steps: int = 20):
    r"""Synchronous recall :math:`s \leftarrow \mathrm{sign}(W s)` (ties go to +1) for ``steps`` steps or until fixed.

    ``probe``: ``(N,)`` or ``(B, N)``; returns the same shape.
    """
    xp = array_module(W, probe)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    s = xp.asarray(probe, dtype=W.dtype)
    if s.shape[-1] != W.shape[1]:
        raise ValueError(f"probe must end in N={W.shape[1]}, got shape {tuple(s.shape)}")
    for _ in range(steps):
        new = xp.where(s @ W.T >= 0, 1.0, -1.0).astype(W.dtype)
        if bool(xp.all(new == s)):
            break
        s = new
    return s
