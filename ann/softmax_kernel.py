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
two compiled passes over each row, the second while it sits in L1: the
maximum (``llvm.maxnum``, which vectorizes), then the shifted float32 ``exp``
of :mod:`ann.ssm_kernel` (a polynomial that vectorizes) written in place and
summed, with no temporary.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuro.backend import array_module
from neuro.intrinsics import maxnum
from neuro.kernels import call, register

from .ssm_kernel import _expf32

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
def _row_max(row):  # pragma: no cover - compiled
    """``max(row)`` of a float32 row, ignoring NaN (-inf for an empty or all-NaN row)."""
    m = np.float32(-np.inf)
    for j in range(row.size):
        m = maxnum(m, row[j])
    return m


# reassoc lets LLVM vectorize the row sum; no nnan/ninf: masked scores are -inf
@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _rows32(s, m, l, alpha):  # pragma: no cover - compiled
    R, K = s.shape
    for r in range(R):
        row = s[r]
        m_new = max(m[r], _row_max(row))
        shift = m_new if m_new > -np.inf else np.float32(0.0)
        total = np.float32(0.0)
        for j in range(K):
            e = _expf32(row[j] - shift)  # masked scores (-inf) give 0
            row[j] = e
            total += e
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
