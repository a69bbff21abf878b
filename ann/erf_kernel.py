"""A vectorized float32 ``erf`` and the fused exact GELU, registered in :mod:`neuro.kernels`.

Kernels (NumPy reference with ``scipy.special.erf``, CPU fast path with numba):

* ``erf``: ``erf(x)``;
* ``gelu``: ``x * Phi(x)`` with ``Phi(x) = (1 + erf(x / sqrt(2))) / 2``;
* ``gelu_backward``: ``g * (Phi(x) + x * phi(x))``, ``phi`` the standard normal density.

``scipy.special.erf`` costs about 11 ns per float32 element (it computes in
double, one element at a time); the fast path evaluates polynomials in float32
that LLVM vectorizes, and fuses the GELU's multiplies into the same pass. It
takes float32 arrays; other dtypes go to the reference.

The float32 ``erf`` (within 1.2 ulp of the exact value, as far as a sweep of
``[-6, 6]`` and of tiny magnitudes shows; ``torch.erf`` is within 1 ulp):

* ``|x| <= 1``: ``x + x * A(x^2)``, ``A`` of degree 6 (``erf(x)/x - 1``, fitted
  by weighted least squares on Chebyshev nodes; adding ``x`` last keeps the
  rounding of the polynomial small against the result);
* ``1 < |x| < 2.2`` and ``2.2 <= |x| < 3.92``: ``1 - E(t)``, ``E`` of degree 10 in
  ``t``, the interval mapped to ``[-1, 1]``, a least-squares fit of ``erfc`` (its
  absolute error stays below half an ulp of ``erf`` there);
* ``|x| >= 3.92``: ``+-1`` (``erfc(3.92)`` is below half an ulp of 1 in float32);

with the sign of ``x`` restored and NaN passed through. The GELU backward takes
``exp(-x^2/2)`` from the vectorized float32 ``exp`` of :mod:`ann.ssm_kernel`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuro.backend import array_module
from neuro.kernels import register

from .ssm_kernel import _exp_float32

__all__ = ["erf_array", "gelu_array", "gelu_backward_array"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CHUNK = 1024  # elements per pass of the GELU backward (scratch for the exp stays in L1)


def _float32s(*coefficients) -> tuple:
    return tuple(np.float32(c) for c in coefficients)


# least-squares fits on Chebyshev nodes, rounded to float32
# erf(x) = x + x * A(x^2) on |x| <= 1
_A = _float32s(
    0.12837916612625122, -0.3761262595653534, 0.1128358244895935, -0.026853691786527634,
    0.005188099108636379, -0.0008008189033716917, 7.847259257687256e-05,
)
# erfc(|x|) = E((|x| - mid) * inv_half_width) on [1, 2.2) and [2.2, 3.92)
_B1 = _float32s(
    0.023651616647839546, -0.05233743041753769, 0.050243932753801346, -0.025875745341181755,
    0.006391097325831652, 0.00034107259125448763, -0.000722765747923404, 0.00016747509653214365,
    1.575478381710127e-05, -1.3553601093008183e-05, 1.3916962871007854e-06,
)
_B1_MID, _B1_SCALE = 1.600000023841858, 1.6666666269302368
_B2 = _float32s(
    1.5081755009305198e-05, -8.323420479428023e-05, 0.00021907271002419293, -0.00036419183015823364,
    0.0004248788463883102, -0.0003643789968919009, 0.00023694217088632286, -0.00011866368731716648,
    3.87465042877011e-05, -9.412049735146866e-07, -3.2838497645570897e-06,
)
_B2_MID, _B2_SCALE = 3.059999942779541, 1.1627906560897827
_SPLIT, _ONE_ABOVE = 2.2, 3.92


# Horner's rule written out: a loop over the coefficient tuple keeps LLVM from vectorizing the caller
@numba.njit(cache=True, inline="always")
def _horner7(t, c):  # pragma: no cover - compiled
    return c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * (c[5] + t * c[6])))))


@numba.njit(cache=True, inline="always")
def _horner11(t, c):  # pragma: no cover - compiled
    inner = c[6] + t * (c[7] + t * (c[8] + t * (c[9] + t * c[10])))
    return c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * (c[5] + t * inner)))))


@numba.njit(cache=True, inline="always")
def _erf32(x):  # pragma: no cover - compiled
    """float32 ``erf`` of one float32 value (see the module docstring); NaN passes through."""
    a = abs(x)
    small = x + x * _horner7(x * x, _A)
    t1 = (a - np.float32(_B1_MID)) * np.float32(_B1_SCALE)
    t2 = (min(a, np.float32(_ONE_ABOVE)) - np.float32(_B2_MID)) * np.float32(_B2_SCALE)
    tail = np.float32(1.0) - (_horner11(t1, _B1) if a < np.float32(_SPLIT) else _horner11(t2, _B2))
    tail = np.float32(1.0) if a >= np.float32(_ONE_ABOVE) else tail
    big = tail if x >= np.float32(0.0) else -tail
    return small if a <= np.float32(1.0) else (big if a == a else x)


@numba.njit(cache=True, nogil=True)
def _erf_loop(x, out):  # pragma: no cover - compiled
    for n in range(x.size):
        out[n] = _erf32(x[n])


@numba.njit(cache=True, nogil=True)
def _gelu_loop(x, out):  # pragma: no cover - compiled
    for n in range(x.size):
        v = x[n]
        out[n] = v * (np.float32(0.5) + np.float32(0.5) * _erf32(v * np.float32(_INV_SQRT2)))


@numba.njit(cache=True, nogil=True)
def _gelu_backward_loop(x, g, out):  # pragma: no cover - compiled
    """``out = g * (Phi(x) + x phi(x))`` in chunks: ``Phi`` and the exponent, then ``exp``, then the product."""
    arg = np.empty(_CHUNK, np.float32)
    cdf = np.empty(_CHUNK, np.float32)
    e = np.empty(_CHUNK, np.float32)
    bits = np.empty(_CHUNK, np.int32)
    scale = bits.view(np.float32)
    for start in range(0, x.size, _CHUNK):
        m = min(_CHUNK, x.size - start)
        xs, gs, os = x[start : start + m], g[start : start + m], out[start : start + m]
        for n in range(m):
            v = xs[n]
            arg[n] = np.float32(-0.5) * v * v
            cdf[n] = np.float32(0.5) + np.float32(0.5) * _erf32(v * np.float32(_INV_SQRT2))
        _exp_float32(arg[:m], e[:m], bits[:m], scale[:m])
        for n in range(m):
            os[n] = gs[n] * (cdf[n] + xs[n] * e[n] * np.float32(_INV_SQRT_2PI))


# ------------------------------------------------------------- references


def _erf_reference(x):
    """``erf(x)`` by ``scipy.special.erf`` (``cupyx.scipy.special`` for CuPy arrays), in ``x``'s dtype."""
    from .tensor import _special

    return _special(array_module(x)).erf(x).astype(x.dtype, copy=False)


def _gelu_reference(x):
    """``x * (1 + erf(x / sqrt(2))) / 2`` in NumPy (CuPy) expressions."""
    return x * (0.5 + 0.5 * _erf_reference(x * x.dtype.type(_INV_SQRT2)))


def _gelu_backward_reference(x, g):
    """``g * (Phi(x) + x * phi(x))``."""
    xp = array_module(x, g)
    cdf = 0.5 + 0.5 * _erf_reference(x * x.dtype.type(_INV_SQRT2))
    return g * (cdf + x * (xp.exp(-0.5 * x * x) * x.dtype.type(_INV_SQRT_2PI)))


# ------------------------------------------------------------- fast paths


def _flat32(*arrays):
    """Flat contiguous views (copies where needed) when every array is float32, else None."""
    if any(a.dtype != np.float32 for a in arrays):
        return None
    return [np.ascontiguousarray(a).reshape(-1) for a in arrays]


def _erf_cpu(x):
    flat = _flat32(x)
    if flat is None:
        return _erf_reference(x)
    out = np.empty_like(flat[0])
    _erf_loop(flat[0], out)
    return out.reshape(x.shape)


def _gelu_cpu(x):
    flat = _flat32(x)
    if flat is None:
        return _gelu_reference(x)
    out = np.empty_like(flat[0])
    _gelu_loop(flat[0], out)
    return out.reshape(x.shape)


def _gelu_backward_cpu(x, g):
    flat = _flat32(x, g) if x.shape == g.shape else None
    if flat is None:
        return _gelu_backward_reference(x, g)
    out = np.empty_like(flat[0])
    _gelu_backward_loop(flat[0], flat[1], out)
    return out.reshape(x.shape)


register("erf", reference=_erf_reference, cpu=_erf_cpu, doc="erf(x), same shape and dtype")
register("gelu", reference=_gelu_reference, cpu=_gelu_cpu, doc="exact GELU x * Phi(x), same shape and dtype")
register("gelu_backward", reference=_gelu_backward_reference, cpu=_gelu_backward_cpu,
         doc="g * GELU'(x) for x and g of one shape and dtype")


def erf_array(x):
    """``erf`` of an array through the kernel registry."""
    from neuro.kernels import call

    return call("erf", x)


def gelu_array(x):
    """The exact GELU of an array through the kernel registry."""
    from neuro.kernels import call

    return call("gelu", x)


def gelu_backward_array(x, g):
    """``g * GELU'(x)`` through the kernel registry."""
    from neuro.kernels import call

    return call("gelu_backward", x, g)
