"""Layer normalization over the trailing axes, forward and backward, registered in :mod:`neuro.kernels`.

* ``layer_norm(x, weight, bias, eps, n_axes)`` -> ``(out, xhat, rstd)``: ``xhat = (x - mean) * rstd``,
  ``rstd = 1 / sqrt(var + eps)`` (biased variance) over the last ``n_axes`` axes, ``out = xhat * weight + bias``
  (``weight``/``bias`` may be None); ``rstd`` keeps those axes with size 1.
* ``layer_norm_backward(g, xhat, rstd, weight, n_axes)`` -> ``(dx, dweight, dbias)``:
  ``dx = rstd (gw - mean(gw) - xhat mean(gw xhat))`` with ``gw = g * weight``,
  ``dweight = sum(g xhat)``, ``dbias = sum(g)`` over the leading axes.

The reference is NumPy (CuPy) expressions; the CPU fast path (float32, numba)
handles one row of the normalized features at a time while it sits in L1:
two passes forward (mean and variance, then the output), two backward (the
two row means, then ``dx`` with ``dweight`` and ``dbias`` accumulated).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuro.backend import array_module
from neuro.kernels import call, register

__all__ = ["layer_norm_arrays", "layer_norm_backward_arrays"]


def _reference(x, weight, bias, eps, n_axes):
    xp = array_module(x)
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    xhat = x - x.mean(axis=axes, keepdims=True)
    rstd = (xhat * xhat).mean(axis=axes, keepdims=True)
    rstd += eps
    xp.sqrt(rstd, out=rstd)
    xp.divide(1, rstd, out=rstd)
    xhat *= rstd
    out = xhat * weight if weight is not None else xhat.copy()
    if bias is not None:
        out += bias
    return out, xhat, rstd


def _backward_reference(g, xhat, rstd, weight, n_axes):
    axes = tuple(range(g.ndim - n_axes, g.ndim))
    lead = tuple(range(g.ndim - n_axes))
    gw = g * weight if weight is not None else g
    dx = gw - gw.mean(axis=axes, keepdims=True)
    dx -= xhat * (gw * xhat).mean(axis=axes, keepdims=True)
    dx *= rstd
    return dx, (g * xhat).sum(axis=lead), g.sum(axis=lead)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _forward32(x, w, b, eps, out, xhat, rstd):  # pragma: no cover - compiled
    R, E = x.shape
    for r in range(R):
        row, xh = x[r], xhat[r]
        total = np.float32(0.0)
        for j in range(E):
            total += row[j]
        mu = total / E
        var = np.float32(0.0)
        for j in range(E):
            d = row[j] - mu
            xh[j] = d
            var += d * d
        rs = np.float32(1.0 / math.sqrt(var / E + eps))
        rstd[r] = rs
        o = out[r]
        for j in range(E):
            v = xh[j] * rs
            xh[j] = v
            o[j] = v * w[j] + b[j]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _backward32(g, xhat, rstd, w, dx, dw, db):  # pragma: no cover - compiled
    R, E = g.shape
    for r in range(R):
        gr, xh = g[r], xhat[r]
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        for j in range(E):
            gw = gr[j] * w[j]
            s1 += gw
            s2 += gw * xh[j]
            dw[j] += gr[j] * xh[j]
            db[j] += gr[j]
        m1, m2, rs = s1 / E, s2 / E, rstd[r]
        d = dx[r]
        for j in range(E):
            d[j] = rs * (gr[j] * w[j] - m1 - xh[j] * m2)


def _rows(a, n_axes):
    return np.ascontiguousarray(a).reshape(-1, math.prod(a.shape[a.ndim - n_axes:]))


def _cpu(x, weight, bias, eps, n_axes):
    if any(a is not None and a.dtype != np.float32 for a in (x, weight, bias)) or x.size == 0:
        return _reference(x, weight, bias, eps, n_axes)
    x2 = _rows(x, n_axes)
    E = x2.shape[1]
    w = np.ones(E, np.float32) if weight is None else np.broadcast_to(weight, x.shape[x.ndim - n_axes:]).reshape(E)
    b = np.zeros(E, np.float32) if bias is None else np.broadcast_to(bias, x.shape[x.ndim - n_axes:]).reshape(E)
    out, xhat = np.empty_like(x2), np.empty_like(x2)
    rstd = np.empty(x2.shape[0], np.float32)
    _forward32(x2, np.ascontiguousarray(w), np.ascontiguousarray(b), np.float32(eps), out, xhat, rstd)
    keep = x.shape[: x.ndim - n_axes] + (1,) * n_axes
    return out.reshape(x.shape), xhat.reshape(x.shape), rstd.reshape(keep)


def _backward_cpu(g, xhat, rstd, weight, n_axes):
    if any(a is not None and a.dtype != np.float32 for a in (g, xhat, rstd, weight)) or g.size == 0:
        return _backward_reference(g, xhat, rstd, weight, n_axes)
    g2, xh2 = _rows(g, n_axes), _rows(xhat, n_axes)
    E = g2.shape[1]
    w = np.ones(E, np.float32) if weight is None else np.broadcast_to(weight, g.shape[g.ndim - n_axes:]).reshape(E)
    dx = np.empty_like(g2)
    dw, db = np.zeros(E, np.float32), np.zeros(E, np.float32)
    _backward32(g2, xh2, rstd.reshape(-1), np.ascontiguousarray(w), dx, dw, db)
    tail = g.shape[g.ndim - n_axes:]
    return dx.reshape(g.shape), dw.reshape(tail), db.reshape(tail)


register("layer_norm", reference=_reference, cpu=_cpu,
         doc="(out, xhat, rstd) of layer normalization over the last n_axes axes")
register("layer_norm_backward", reference=_backward_reference, cpu=_backward_cpu,
         doc="(dx, dweight, dbias) of layer normalization for the output gradient g")


def layer_norm_arrays(x, weight, bias, eps, n_axes):
    """The ``layer_norm`` kernel through the registry."""
    return call("layer_norm", x, weight, bias, eps, n_axes)


def layer_norm_backward_arrays(g, xhat, rstd, weight, n_axes):
    """The ``layer_norm_backward`` kernel through the registry."""
    return call("layer_norm_backward", g, xhat, rstd, weight, n_axes)
