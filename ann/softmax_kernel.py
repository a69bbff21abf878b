"""The online-softmax update of one score tile (FlashAttention's inner step), registered in :mod:`neuro.kernels`.

``online_softmax_tile(s, m, l)`` takes a score tile ``s`` ``(..., R, K)`` and the
running row maximum ``m`` and normalizer ``l`` ``(..., R)`` of the rows so far,
and, in place::

    m_new = max(m, max_k s)          shift = m_new, or 0 where m_new = -inf (no key seen yet)
    s     = exp(s - shift)           (masked scores, -inf, give 0)
    alpha = exp(m - shift)           the factor that rescales what was accumulated before
    l     = alpha * l + sum_k s      m = m_new

and returns ``alpha`` ``(..., R)``. Started from ``m = -inf``, ``l = 0`` on a whole
row it is a softmax numerator and its sum.

Implementations: the reference in NumPy (CuPy) expressions (four passes over
the tile and two temporaries); the CPU fast path for contiguous float32 tiles,
compiled passes over each row while it sits in L1: the maximum (16 running
maxima, which vectorize), subtract, the vectorized float32 ``exp`` of
:mod:`ann.ssm_kernel` and the row sum, with no temporary tile.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuro.backend import array_module
from neuro.kernels import call, register

from .ssm_kernel import _exp_float32

__all__ = ["online_softmax_tile"]


def _reference(s, m, l):
    xp = array_module(s)
    m_new = xp.maximum(m, s.max(axis=-1))
    shift = xp.where(xp.isfinite(m_new), m_new, 0)
    xp.subtract(s, shift[..., None], out=s)
    xp.exp(s, out=s)
    alpha = xp.exp(m - shift)
    l *= alpha
    l += s.sum(axis=-1)
    m[...] = m_new
    return alpha


@numba.njit(cache=True, inline="always")
def _row_max(row, lanes):  # pragma: no cover - compiled
    """``max(row)`` through 16 running maxima (an elementwise max that vectorizes; a scalar reduction does not)."""
    K = row.size
    lanes[:] = -np.inf
    for j in range(0, K - K % 16, 16):
        for u in range(16):
            v = row[j + u]
            lanes[u] = v if v > lanes[u] else lanes[u]
    m = lanes[0]
    for u in range(1, 16):
        m = max(m, lanes[u])
    for j in range(K - K % 16, K):
        m = max(m, row[j])
    return m


# reassoc lets LLVM vectorize the row sum; no nnan/ninf: masked scores are -inf
@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _rows32(s, m, l, alpha):  # pragma: no cover - compiled
    R, K = s.shape
    e = np.empty(K, np.float32)
    bits = np.empty(K, np.int32)
    scale = bits.view(np.float32)
    lanes = np.empty(16, np.float32)
    for r in range(R):
        row = s[r]
        m_new = max(m[r], _row_max(row, lanes))
        shift = m_new if m_new > -np.inf else np.float32(0.0)
        for j in range(K):
            row[j] = max(row[j] - shift, np.float32(-100.0))  # finite for the exp; exp(-100) flushes to 0
        _exp_float32(row, e, bits, scale)
        total = np.float32(0.0)
        for j in range(K):
            row[j] = e[j]
            total += e[j]
        a = np.float32(math.exp(m[r] - shift))
        alpha[r] = a
        l[r] = a * l[r] + total
        m[r] = m_new


def _cpu(s, m, l):
    ok = (s.dtype == m.dtype == l.dtype == np.float32 and s.flags.c_contiguous and m.flags.c_contiguous
          and l.flags.c_contiguous and s.ndim >= 1 and s.shape[-1] > 0)
    if not ok:
        return _reference(s, m, l)
    s2 = s.reshape(-1, s.shape[-1])
    alpha = np.empty(m.shape, np.float32)
    _rows32(s2, m.reshape(-1), l.reshape(-1), alpha.reshape(-1))
    return alpha


register("online_softmax_tile", reference=_reference, cpu=_cpu,
         doc="in place: s (..., R, K) -> exp(s - new row max); running max m and sum l (..., R) updated; returns alpha")


def online_softmax_tile(s, m, l):
    """The online-softmax update of one tile through the kernel registry (see the module docstring)."""
    return call("online_softmax_tile", s, m, l)
