"""A float64 ``exp`` that vectorizes in numba, with one arithmetic for NumPy, numba and CUDA.

pip's numba has no vector ``exp`` (no SVML): a loop that calls ``math.exp``
or ``np.exp`` on a scalar runs one libm call per element and keeps the whole
loop from vectorizing. :func:`exp` is made of products, sums and integer bit
operations only, so a loop around it vectorizes, and the NumPy form of the
same arithmetic (:func:`exp_array`) gives bit-identical results, because each
operation rounds once in IEEE double either way. The CUDA twin is
``exp64`` in ``neuro/kernels/spiking.cu`` (its products and sums go through
the ``_rn`` intrinsics, so that nvcc cannot fuse them).

Method (Cody & Waite range reduction, as fdlibm's ``exp``):

* ``x`` is clamped to [-708, 708] (``exp(-708)`` ~ 3e-308 is the smallest
  result kept normal; a larger ``x`` would overflow);
* ``k = round(x / ln 2)``, by adding and subtracting ``1.5 * 2^52``;
* ``r = x - k ln2_hi - k ln2_lo`` with fdlibm's two-part ``ln 2`` (``k ln2_hi``
  is exact), ``|r| <= ln(2) / 2``;
* ``exp(r)`` by its Taylor polynomial to ``r^13`` in Horner form (truncation
  error below ``4e-18``);
* ``2^k`` from its exponent bits, read off the rounding sum's low bits.

Accuracy: within 2 ulp of the correctly rounded ``exp`` on [-708, 708] (the
tests compare with ``np.exp`` over that range). NaN stays NaN. Results below
``exp(-708)`` are ``exp(-708)``, not 0: the callers multiply a difference by
the decay and add a fixed point, where that is below any state's rounding.
"""

from __future__ import annotations

import numba
import numpy as np

from .intrinsics import float64_bits, float64_from_bits

__all__ = ["exp", "exp_array", "X_MIN", "X_MAX"]

X_MIN, X_MAX = -708.0, 708.0
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42fee00000: its 21 trailing zero bits make k * _LN2_HI exact
_LN2_LO = 1.90821492927058770002e-10
_SHIFTER = 6755399441055744.0  # 1.5 * 2^52: t = y + _SHIFTER rounds y to an integer, held in t's low bits
_SHIFTER_BITS = 0x4338000000000000  # the bits of _SHIFTER
@numba.njit(cache=True, nogil=True, inline="always")
def _parts(x):
    """For a clamped ``x`` (scalar or array): ``t`` (``k`` in its low bits) and ``p = exp(r)``."""
    t = x * _LOG2E + _SHIFTER
    k = t - _SHIFTER
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0  # 1/13!, then Horner down to 1/0!
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return t, p


@numba.njit(cache=True, nogil=True, inline="always")
def exp(x):
    """``exp(x)`` for a float64 scalar in numba code (see the module docstring); vectorizes inside loops."""
    x = X_MIN if x < X_MIN else (X_MAX if x > X_MAX else x)  # NaN passes through
    t, p = _parts(x)
    return p * float64_from_bits((float64_bits(t) - _SHIFTER_BITS + 1023) << 52)


def exp_array(x):
    """:func:`exp` on a NumPy array (or scalar), element by element, bit-identical to the numba form.

    Returns a new float64 array of ``x``'s shape.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), X_MIN, X_MAX)  # NaN passes through
    t, p = _parts.py_func(x)
    return p * ((np.ascontiguousarray(t).view(np.int64) - _SHIFTER_BITS + 1023) << 52).view(np.float64)
