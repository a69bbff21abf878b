"""The differentiable linear recurrence ``h[t] = a[t] * h[t-1] + b[t]``.

One primitive for every linear sequence model (S4D, Mamba, RWKV): the
forward pass is :func:`scans.linear_recurrence` (a parallel/chunked scan, or
a CUDA kernel on CuPy arrays), and so is the backward pass, run in reverse:
with ``g = dL/dh`` the adjoint ``lam[t] = g[t] + a[t+1] * lam[t+1]`` gives

    dL/db[t] = lam[t],   dL/da[t] = lam[t] * h[t-1],   dL/dh0 = a[0] * lam[0].
"""

from __future__ import annotations

import numpy as np

from scans import linear_recurrence as scan_recurrence

from .tensor import Tensor, as_tensor, make_op

__all__ = ["linear_recurrence"]


def _shift(xp, x, axis: int, forward: bool, fill):
    """``x`` moved one step along ``axis`` (``x[t-1]`` if ``forward`` else ``x[t+1]``), ``fill`` entering at the edge."""
    x = xp.moveaxis(x, axis, -1)
    edge = xp.broadcast_to(xp.asarray(fill, dtype=x.dtype), x.shape[:-1] + (1,))
    out = xp.concatenate([edge, x[..., :-1]] if forward else [x[..., 1:], edge], axis=-1)
    return xp.moveaxis(out, -1, axis)


def linear_recurrence(a, b, h0=None, *, axis: int = -1) -> Tensor:
    """``h[t] = a[t] * h[t-1] + b[t]`` along ``axis``, differentiable in ``a``, ``b`` and ``h0``.

    Parameters
    ----------
    a : Tensor or array, broadcastable to ``b``'s shape (the decay).
    b : Tensor or array, shape ``(..., T, ...)`` with time on ``axis``.
    h0 : optional Tensor or array, ``b``'s shape without ``axis`` (default 0).

    Returns
    -------
    Tensor of ``b``'s (broadcast) shape: every ``h[t]``.
    """
    a, b = as_tensor(a), as_tensor(b)
    parents = (a, b) if h0 is None else (a, b, as_tensor(h0))
    xp = b.xp
    shape = np.broadcast_shapes(a.shape, b.shape)
    ad, bd = xp.broadcast_to(a.data, shape), xp.broadcast_to(b.data, shape)
    axis = axis % bd.ndim
    h0d = None if h0 is None else parents[2].data
    h = scan_recurrence(ad, bd, h0=h0d, axis=axis)

    def backward(g):
        a_next = _shift(xp, ad, axis, forward=False, fill=0)
        lam = scan_recurrence(a_next, g, axis=axis, reverse=True)
        h_prev = _shift(xp, h, axis, forward=True, fill=0)
        if h0d is not None:
            first = [slice(None)] * h.ndim
            first[axis] = slice(0, 1)
            h_prev[tuple(first)] = xp.expand_dims(h0d, axis)
        grads = [lam * h_prev, lam]
        if h0d is not None:
            grads.append(xp.take(ad * lam, 0, axis=axis))
        return tuple(grads)

    return make_op(h, parents, backward, op="linear_recurrence")
