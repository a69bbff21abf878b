"""Fused CPU kernel for the selective-scan forward pass (inference, no gradient).

The differentiable :func:`ann.ssm.selective_scan` materializes the
``(B, D, N, L)`` decay and drive tensors for the parallel scan. Without a
gradient to compute, one fused pass per ``(batch, channel)`` (threads over
them) keeps the ``N``-sized state in cache, reads each input once and never
stores ``exp(delta A)``; in float32 the exponential is a vectorizable
polynomial (:func:`_exp_float32`), in float64 libm's ``exp``. Registered in the
kernel registry as ``"selective_scan"``: the reference is the composed
:func:`ann.ssm.composed_selective_scan` (the differentiable path), so the two
are compared directly. :func:`ann.ssm.selective_scan` uses this kernel when
no gradient is wanted.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuro.kernels import register

__all__ = ["selective_scan_arrays"]


@numba.njit(cache=True, fastmath=True, inline="always")
def _exp_float32(x, out, bits, scale):  # pragma: no cover - compiled
    """``out = exp(x)`` in float32 by Cephes' ``expf`` scheme (within 1e-7 relative), written so it vectorizes.

    ``exp(x) = 2^k p(r)`` with ``k = round(x / ln 2)``, ``r = x - k ln 2`` (two-part
    ln 2) and ``p`` a degree-7 polynomial; ``2^k`` is built from its exponent bits.
    pip's numba has no vector ``exp`` (no SVML), and a scalar one per state
    element dominated the scan.
    """
    for n in range(x.size):
        v = min(max(x[n], np.float32(-87.0)), np.float32(88.0))
        k = math.floor(v * np.float32(1.44269504088896341) + np.float32(0.5))
        r = v - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        out[n] = p * r * r + r + np.float32(1.0)
        bits[n] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for n in range(x.size):
        out[n] *= scale[n]  # scale is bits viewed as float32: 2^k


@numba.njit(cache=True, inline="always")
def _exp_float64(x, out, bits, scale):  # pragma: no cover - compiled
    """``out = exp(x)`` with libm's double-precision ``exp`` (``bits``, ``scale`` unused)."""
    for n in range(x.size):
        out[n] = math.exp(x[n])


_STEPS = 64  # time steps whose exponentials are computed together


@numba.njit(parallel=True, fastmath=True, cache=True)
def _fused_forward(u, dt, A, Bx, Cx, y, last, softplus, float32_exp):  # pragma: no cover - compiled
    """One pass per (batch, channel): ``h = exp(dt A) h + dt B u``, ``y = C . h``.

    ``dt`` is the step size before the optional ``softplus`` (threshold 20,
    as PyTorch); ``Bx``, ``Cx`` are (batch or 1, groups, L or 1, N), so the
    state loop reads contiguous memory. ``float32_exp`` picks the polynomial
    exponential (float32 data) over libm's (float64).
    """
    batch, dim, length = u.shape
    dstate = A.shape[1]
    b_groups, c_groups = Bx.shape[1], Cx.shape[1]
    for bd in numba.prange(batch * dim):
        b, d = bd // dim, bd % dim
        bb = b if Bx.shape[0] > 1 else 0
        cb = b if Cx.shape[0] > 1 else 0
        bg = d // (dim // b_groups)
        cg = d // (dim // c_groups)
        a_row = A[d]
        h = np.zeros(dstate, dtype=u.dtype)
        steps = np.empty(_STEPS, dtype=u.dtype)
        exponent = np.empty(_STEPS * dstate, dtype=u.dtype)
        decay = np.empty(_STEPS * dstate, dtype=u.dtype)
        bits = np.empty(_STEPS * dstate, dtype=np.int32)
        scale = bits.view(np.float32)  # made once per row: a view per block would allocate
        for t0 in range(0, length, _STEPS):
            block = min(_STEPS, length - t0)
            # exp(dt A) for a block of steps at once: long loops vectorize, 16-long ones do not pay
            for i in range(block):
                step = dt[b, d, t0 + i]
                if softplus and step <= 20:
                    step = math.log1p(math.exp(step))
                steps[i] = step
                for n in range(dstate):
                    exponent[i * dstate + n] = step * a_row[n]
            size = block * dstate
            if float32_exp:
                _exp_float32(exponent[:size], decay[:size], bits[:size], scale[:size])
            else:
                _exp_float64(exponent[:size], decay[:size], bits[:size], scale[:size])
            for i in range(block):
                t = t0 + i
                bt = t if Bx.shape[2] > 1 else 0
                ct = t if Cx.shape[2] > 1 else 0
                step_u = steps[i] * u[b, d, t]
                acc = h[0] * 0  # zero of the state dtype
                for n in range(dstate):
                    h[n] = decay[i * dstate + n] * h[n] + step_u * Bx[bb, bg, bt, n]
                    acc += Cx[cb, cg, ct, n] * h[n]
                y[b, d, t] = acc
        last[b, d, :] = h


def _as_4d(X, dim: int):
    """B or C as (batch or 1, groups, L or 1, N); a fixed (D, N) becomes D groups of one channel."""
    if X.ndim == 2:
        return X.reshape(1, dim, 1, X.shape[1])
    if X.ndim == 3:
        X = X[:, None]
    return np.swapaxes(X, 2, 3)


def _cpu(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The fused kernel for float32/float64 ``u``; other dtypes take the reference."""
    u = np.ascontiguousarray(u)
    dtype = u.dtype
    if dtype not in (np.float32, np.float64):
        return _reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    dt = np.asarray(delta, dtype=dtype)
    if delta_bias is not None:
        dt = dt + np.asarray(delta_bias, dtype=dtype)[:, None]
    batch, dim, length = u.shape
    y = np.empty_like(u)
    last = np.empty((batch, dim, A.shape[1]), dtype=dtype)
    as_c = lambda X: np.ascontiguousarray(_as_4d(np.asarray(X, dtype=dtype), dim))  # noqa: E731
    _fused_forward(u, np.ascontiguousarray(dt), np.ascontiguousarray(A, dtype=dtype), as_c(B), as_c(C), y, last,
                   bool(delta_softplus), dtype == np.float32)
    if D is not None:
        y += u * np.asarray(D, dtype=dtype)[:, None]
    if z is not None:
        y *= z / (1.0 + np.exp(-z))
    return y, last


def _reference(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    from .ssm import composed_selective_scan
    from .tensor import no_grad

    with no_grad():
        y, last = composed_selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state=True)
    return y.data, last.data


register(
    "selective_scan",
    reference=_reference,
    cpu=_cpu,
    doc="Mamba selective scan forward: (y (B, D, L), last state (B, D, N))",
)


def selective_scan_arrays(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, impl=None):
    """Forward-only selective scan on plain arrays, dispatched through the kernel registry."""
    from neuro.kernels import call

    return call("selective_scan", u, delta, A, B, C, D, z, delta_bias, delta_softplus, impl=impl)
