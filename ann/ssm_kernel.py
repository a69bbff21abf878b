"""Fused CPU kernel for the selective-scan forward pass (inference, no gradient).

The differentiable :func:`ann.ssm.selective_scan` materializes the
``(B, D, N, L)`` decay and drive tensors for the parallel scan. Without a
gradient to compute, one fused pass per ``(batch, channel)`` keeps the
``N``-sized state in registers and reads each input once. Registered in the
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


@numba.njit(parallel=True, fastmath=True, cache=True)
def _fused_chunk(decay, u, dt, Bx, Cx, t0, h, y):  # pragma: no cover - compiled
    """Advance the state ``h`` (B, D, N) over the steps ``t0 .. t0 + decay.shape[2] - 1``.

    ``decay`` is ``exp(dt * A)`` for those steps, (B, D, Lc, N), computed by
    NumPy's SIMD ``exp``; ``Bx``, ``Cx`` are (batch or 1, groups, L or 1, N)
    so the state loop reads contiguous memory.
    """
    batch, dim, chunk, dstate = decay.shape
    b_groups, c_groups = Bx.shape[1], Cx.shape[1]
    for bd in numba.prange(batch * dim):
        b, d = bd // dim, bd % dim
        bb = b if Bx.shape[0] > 1 else 0
        cb = b if Cx.shape[0] > 1 else 0
        bg = d // (dim // b_groups)
        cg = d // (dim // c_groups)
        state = h[b, d]
        for i in range(chunk):
            t = t0 + i
            b_t = Bx[bb, bg, t if Bx.shape[2] > 1 else 0]
            c_t = Cx[cb, cg, t if Cx.shape[2] > 1 else 0]
            a_t = decay[b, d, i]
            step_u = dt[b, d, t] * u[b, d, t]
            acc = state[0] * 0  # zero of the state dtype
            for n in range(dstate):
                state[n] = a_t[n] * state[n] + step_u * b_t[n]
                acc += c_t[n] * state[n]
            y[b, d, t] = acc


_CHUNK = 64  # time steps per exp() batch: (B, D, 64, N) stays in cache-friendly sizes


def _as_4d(X, dim: int):
    """B or C as (batch or 1, groups, L or 1, N); a fixed (D, N) becomes D groups of one channel."""
    if X.ndim == 2:
        return X.reshape(1, dim, 1, X.shape[1])
    if X.ndim == 3:
        X = X[:, None]
    return np.swapaxes(X, 2, 3)


def _prepare_delta(delta, delta_bias, delta_softplus):
    if delta_bias is not None:
        delta = delta + np.asarray(delta_bias)[:, None]
    if delta_softplus:  # as torch.nn.functional.softplus (threshold 20)
        delta = np.where(delta > 20, delta, np.log1p(np.exp(np.minimum(delta, 20))))
    return delta


def _cpu(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    u = np.ascontiguousarray(u)
    dtype = u.dtype
    dt = np.ascontiguousarray(_prepare_delta(delta, delta_bias, delta_softplus), dtype=dtype)
    batch, dim, length = u.shape
    y = np.empty_like(u)
    last = np.zeros((batch, dim, A.shape[1]), dtype=dtype)
    as_c = lambda X: np.ascontiguousarray(_as_4d(np.asarray(X, dtype=dtype), dim))  # noqa: E731
    Bx, Cx, A = as_c(B), as_c(C), np.asarray(A, dtype=dtype)
    for t0 in range(0, length, _CHUNK):
        decay = np.exp(dt[:, :, t0 : t0 + _CHUNK, None] * A[None, :, None, :])
        _fused_chunk(decay, u, dt, Bx, Cx, t0, last, y)
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
