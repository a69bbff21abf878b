"""Fused CPU kernels for Mamba's selective scan: the forward pass and its gradients.

:func:`ann.ssm.composed_selective_scan` builds the scan from differentiable
ops over the parallel scan, materializing ``(B, D, N, L)`` decay and drive
tensors. The kernels here never store them:

* ``"selective_scan"`` (forward, :func:`_fused_forward`): threads over
  (batch, block of 64 channels); the states of a block stay in cache, each
  input is read once, and softplus, ``D u`` and the ``silu(z)`` gate are
  applied to tiles inside the kernel;
* ``"selective_scan_backward"`` (:func:`_fused_backward`): threads over the
  batch; per channel the states are recomputed and one reverse pass
  accumulates every gradient.

In float32 ``exp`` and ``log1p`` are vectorizable polynomials
(:func:`_exp_float32`, :func:`_expf32`, :func:`_log1p_unit_float32`), in float64 libm's.
Both are registered in :mod:`neuro.kernels` with the composed path as their
reference, and the tests compare the two. :func:`ann.ssm.selective_scan`
uses them with and without gradients.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuro.intrinsics import float32_from_bits
from neuro.kernels import register

__all__ = ["selective_scan_arrays"]


@numba.njit(cache=True, fastmath=True, inline="always")
def _exp_parts(x):  # pragma: no cover - compiled
    """``(p, k)`` with ``exp(x) = p 2^k`` for ``x`` clamped to [-87.33, 88] (Cephes' ``expf`` reduction, float32).

    ``k = round(x / ln 2)``, ``r = x - k ln 2`` (two-part ln 2) and ``p`` a degree-7
    polynomial in ``r``. ``np.floor`` keeps ``k`` a float32: ``math.floor`` returns an
    int64, whose conversion does not vectorize on AVX2 and made this 4x slower.
    """
    v = min(max(x, np.float32(-87.33)), np.float32(88.0))  # 2^k stays a normal float32
    k = np.floor(v * np.float32(1.44269504088896341) + np.float32(0.5))
    r = v - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    return p * r * r + r + np.float32(1.0), k


@numba.njit(cache=True, inline="always")
def _expf32(x):  # pragma: no cover - compiled
    """``exp(x)`` of one float32 (within 1e-7 relative), inlined into loops that vectorize.

    Results below the smallest normal float32 are flushed to 0, above 88 saturate;
    NaN stays NaN. ``2^k`` is built from its exponent bits by a bitcast.
    """
    p, k = _exp_parts(x)
    e = p * float32_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))
    return np.float32(0.0) if x < np.float32(-87.33) else e


@numba.njit(cache=True, fastmath=True, inline="always")
def _exp_float32(x, out, bits, scale):  # pragma: no cover - compiled
    """``out = exp(x)`` in float32 by :func:`_exp_parts` (within 1e-7 relative), written so it vectorizes.

    Results below the smallest normal float32 are flushed to 0; above 88 saturate.
    ``2^k`` is built from its exponent bits (``scale`` is ``bits`` viewed as float32);
    pip's numba has no vector ``exp`` (no SVML).
    """
    for n in range(x.size):
        out[n], k = _exp_parts(x[n])
        bits[n] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for n in range(x.size):
        out[n] = out[n] * scale[n] if x[n] >= np.float32(-87.33) else np.float32(0.0)  # flush underflow to 0


@numba.njit(cache=True, fastmath=True, inline="always")
def _log1p_unit_float32(w, out):  # pragma: no cover - compiled
    """``out = log1p(w)`` in float32 for ``w`` in [0, 1], written so it vectorizes.

    ``log1p(w) = 2 atanh(s)`` with ``s = w / (2 + w) <= 1/3``; the atanh series
    to ``s^13`` leaves a relative error below 2e-8 and stays accurate as ``w -> 0``.
    """
    for n in range(w.size):
        s = w[n] / (np.float32(2.0) + w[n])
        s2 = s * s
        p = np.float32(1 / 13)
        p = p * s2 + np.float32(1 / 11)
        p = p * s2 + np.float32(1 / 9)
        p = p * s2 + np.float32(1 / 7)
        p = p * s2 + np.float32(1 / 5)
        p = p * s2 + np.float32(1 / 3)
        out[n] = np.float32(2.0) * s * (p * s2 + np.float32(1.0))


@numba.njit(cache=True, fastmath=True, inline="always")
def _exp(x, out, bits, scale, float32_math):  # pragma: no cover - compiled
    """``out = exp(x)`` over flat buffers: the float32 polynomial, or libm's double ``exp``."""
    if float32_math:
        _exp_float32(x, out, bits, scale)
    else:
        for n in range(x.size):
            out[n] = math.exp(x[n])


@numba.njit(cache=True, fastmath=True, inline="always")
def _softplus(x, tmp, tmp2, bits, scale, float32_math):  # pragma: no cover - compiled
    """In place ``x = softplus(x)`` (``x`` above 20 kept, as PyTorch) as ``max(x, 0) + log1p(exp(-|x|))``."""
    for n in range(x.size):
        tmp[n] = -abs(x[n])
    _exp(tmp, tmp2, bits, scale, float32_math)
    if float32_math:
        _log1p_unit_float32(tmp2, tmp)
    else:
        for n in range(x.size):
            tmp[n] = math.log1p(tmp2[n])
    for n in range(x.size):
        v = x[n]
        x[n] = v if v > 20 else max(v, v * 0) + tmp[n]


@numba.njit(cache=True, fastmath=True, inline="always")
def _silu_gate(y, z, tmp, tmp2, bits, scale, float32_math):  # pragma: no cover - compiled
    """In place ``y *= silu(z) = z / (1 + exp(-z))``."""
    for n in range(z.size):
        tmp[n] = -z[n]
    _exp(tmp, tmp2, bits, scale, float32_math)
    for n in range(z.size):
        y[n] *= z[n] / (1 + tmp2[n])


@numba.njit(cache=True, inline="always")
def _fill_tile(tile, X, xb, xt, d0, lanes, dim):  # pragma: no cover - compiled
    """``tile[n, j] = X[xb, group of channel d0 + j, xt, n]``: B or C of one step for a block of channels."""
    groups = X.shape[1]
    if groups == 1:
        for n in range(tile.shape[0]):
            tile[n, :] = X[xb, 0, xt, n]
    else:
        for j in range(lanes):
            tile[:, j] = X[xb, (d0 + j) // (dim // groups), xt, :]


_LANES = 64  # channels advanced together: inner loops of 64 vectorize; LLVM leaves 16-long ones scalar
_STEPS = 32  # time steps per tile


@numba.njit(parallel=True, fastmath=True, cache=True)
def _fused_forward(u, dt, A, Bx, Cx, D, bias, z, y, last, softplus, float32_math):  # pragma: no cover - compiled
    """``h = exp(dt A) h + dt B u``, ``y = (C . h + D u) silu(z)`` in one pass, threads over (batch, channel block).

    Each task advances ``_LANES`` channels of one batch element, their states
    as an ``(N, _LANES)`` tile, over ``_STEPS``-step tiles of the inputs moved
    into channel-minor buffers, so every inner loop runs along channels.
    The step is ``dt + bias`` before the optional ``softplus``; ``Bx``, ``Cx``
    are (batch or 1, groups, L or 1, N); ``D``, ``bias`` and ``z`` are skipped
    when empty.
    ``float32_math`` picks the polynomial ``exp``/``log1p`` (float32 data)
    over libm's (float64). Lanes past the last channel stay zero.
    """
    batch, dim, length = u.shape
    dstate = A.shape[1]
    blocks = (dim + _LANES - 1) // _LANES
    shared = Bx.shape[1] == 1 and Cx.shape[1] == 1
    for task in numba.prange(batch * blocks):
        b, d0 = task // blocks, (task % blocks) * _LANES
        lanes = min(_LANES, dim - d0)
        bb = b if Bx.shape[0] > 1 else 0
        cb = b if Cx.shape[0] > 1 else 0
        at = np.zeros((dstate, _LANES), dtype=u.dtype)
        d_row = np.zeros(_LANES, dtype=u.dtype)
        bias_row = np.zeros(_LANES, dtype=u.dtype)
        for j in range(lanes):
            at[:, j] = A[d0 + j]
            if D.size:
                d_row[j] = D[d0 + j]
            if bias.size:
                bias_row[j] = bias[d0 + j]
        h = np.zeros((dstate, _LANES), dtype=u.dtype)
        exponent = np.empty((dstate, _LANES), dtype=u.dtype)
        decay = np.empty((dstate, _LANES), dtype=u.dtype)
        b_t = np.zeros((dstate, _LANES), dtype=u.dtype)
        c_t = np.zeros((dstate, _LANES), dtype=u.dtype)
        acc = np.empty(_LANES, dtype=u.dtype)
        du = np.empty(_LANES, dtype=u.dtype)
        tiles = np.zeros((6, _STEPS, _LANES), dtype=u.dtype)
        steps, u_t, z_t, y_t, tmp, tmp2 = tiles[0], tiles[1], tiles[2], tiles[3], tiles[4], tiles[5]
        bits = np.empty(max(dstate, _STEPS) * _LANES, dtype=np.int32)
        scale = bits.view(np.float32)
        for t0 in range(0, length, _STEPS):
            block = min(_STEPS, length - t0)
            for j in range(lanes):
                for i in range(block):
                    steps[i, j] = dt[b, d0 + j, t0 + i] + bias_row[j]
                    u_t[i, j] = u[b, d0 + j, t0 + i]
                    if z.size:
                        z_t[i, j] = z[b, d0 + j, t0 + i]
            if softplus:
                _softplus(steps.ravel(), tmp.ravel(), tmp2.ravel(), bits, scale, float32_math)
            for i in range(block):
                t = t0 + i
                bt = t if Bx.shape[2] > 1 else 0
                ct = t if Cx.shape[2] > 1 else 0
                for n in range(dstate):
                    for j in range(_LANES):
                        exponent[n, j] = steps[i, j] * at[n, j]
                _exp(exponent.ravel(), decay.ravel(), bits, scale, float32_math)
                for j in range(_LANES):
                    du[j] = steps[i, j] * u_t[i, j]
                acc[:] = 0
                if shared:  # one group: B and C are the same for every lane
                    for n in range(dstate):
                        b_n, c_n = Bx[bb, 0, bt, n], Cx[cb, 0, ct, n]
                        for j in range(_LANES):
                            h[n, j] = decay[n, j] * h[n, j] + du[j] * b_n
                            acc[j] += c_n * h[n, j]
                else:
                    if t == 0 or Bx.shape[2] > 1:  # a fixed (D, N) B or C is filled once
                        _fill_tile(b_t, Bx, bb, bt, d0, lanes, dim)
                    if t == 0 or Cx.shape[2] > 1:
                        _fill_tile(c_t, Cx, cb, ct, d0, lanes, dim)
                    for n in range(dstate):
                        for j in range(_LANES):
                            h[n, j] = decay[n, j] * h[n, j] + du[j] * b_t[n, j]
                            acc[j] += c_t[n, j] * h[n, j]
                for j in range(_LANES):
                    y_t[i, j] = acc[j] + d_row[j] * u_t[i, j]
            if z.size:
                _silu_gate(y_t.ravel(), z_t.ravel(), tmp.ravel(), tmp2.ravel(), bits, scale, float32_math)
            for j in range(lanes):
                for i in range(block):
                    y[b, d0 + j, t0 + i] = y_t[i, j]
        for j in range(lanes):
            last[b, d0 + j, :] = h[:, j]


@numba.njit(parallel=True, fastmath={"contract"}, cache=True)
def _fused_backward(u, dt, A, Bx, Cx, dy, du, ddt, dA, dB, dC, float32_math):  # pragma: no cover - compiled
    """Gradients of ``y = C . h``, ``h[t] = exp(dt A) h[t-1] + dt B u`` (``h[-1] = 0``), threads over the batch.

    Per (batch, channel): the states are recomputed forward and kept for all
    ``L`` steps, then one reverse pass carries ``dL/dh`` back through time::

        gh[t] = C[t] dy[t] + exp(dt[t+1] A) gh[t+1]
        d exp(dt[t] A) = gh[t] h[t-1],   d(dt B u)[t] = gh[t]

    ``u``, ``dt``, ``dy``, ``du``, ``ddt``: (batch, D, L); ``dA``: (batch, D, N)
    per batch element; ``Bx``, ``Cx`` as in :func:`_fused_forward` and ``dB``,
    ``dC`` shaped like them with a leading ``batch`` axis of partial sums
    (one per thread's batch element, so no two threads write one place).
    ``float32_math`` as in :func:`_fused_forward`.
    """
    batch, dim, length = u.shape
    dstate = A.shape[1]
    b_per, c_per = dim // Bx.shape[1], dim // Cx.shape[1]
    for task in numba.prange(batch):
        b = np.int64(task)  # prange's index may be unsigned; mixed with signed ints numba would make it a float
        bb = b if Bx.shape[0] > 1 else 0
        cb = b if Cx.shape[0] > 1 else 0
        h = np.zeros((length + 1, dstate), dtype=u.dtype)  # h[t + 1] is the state after step t
        exponent = np.empty((length, dstate), dtype=u.dtype)
        decay = np.empty((length, dstate), dtype=u.dtype)
        bits = np.empty(length * dstate, dtype=np.int32)
        scale = bits.view(np.float32)
        gh = np.empty(dstate, dtype=u.dtype)
        for d in range(dim):
            bg, cg = d // b_per, d // c_per
            a_row = A[d]
            for t in range(length):
                for n in range(dstate):
                    exponent[t, n] = dt[b, d, t] * a_row[n]
            _exp(exponent.ravel(), decay.ravel(), bits, scale, float32_math)  # all steps at once: vectorizes
            for t in range(length):
                bt = t if Bx.shape[2] > 1 else 0
                drive = dt[b, d, t] * u[b, d, t]
                for n in range(dstate):
                    h[t + 1, n] = decay[t, n] * h[t, n] + drive * Bx[bb, bg, bt, n]
            gh[:] = 0
            for t in range(length - 1, -1, -1):
                bt = t if Bx.shape[2] > 1 else 0
                ct = t if Cx.shape[2] > 1 else 0
                g, step, ut = dy[b, d, t], dt[b, d, t], u[b, d, t]
                s_dt = g * 0
                s_u = g * 0
                for n in range(dstate):
                    dC[b, cg, ct, n] += g * h[t + 1, n]
                    g_h = gh[n] + Cx[cb, cg, ct, n] * g  # dL/dh[t]
                    e = decay[t, n]
                    g_e = g_h * h[t, n] * e  # dL/d(dt A) through exp
                    dA[b, d, n] += g_e * step
                    b_n = Bx[bb, bg, bt, n]
                    s_dt += g_e * a_row[n] + g_h * b_n * ut
                    s_u += g_h * b_n
                    dB[b, bg, bt, n] += g_h * step * ut
                    gh[n] = g_h * e
                ddt[b, d, t] = s_dt
                du[b, d, t] = s_u * step


def _as_4d(X, dim: int, dtype):
    """B or C as a contiguous ``dtype`` array (batch or 1, groups, L or 1, N); a fixed (D, N) is D groups of one."""
    X = np.asarray(X, dtype=dtype)
    if X.ndim == 2:
        return np.ascontiguousarray(X.reshape(1, dim, 1, X.shape[1]))
    if X.ndim == 3:
        X = X[:, None]
    return np.ascontiguousarray(np.swapaxes(X, 2, 3))


def _from_4d(X4, shape: tuple):
    """Inverse of :func:`_as_4d`: an array laid out (batch or 1, groups, L or 1, N) back to ``shape``."""
    if len(shape) == 2:
        return X4.reshape(shape)
    X = np.swapaxes(X4, 2, 3)
    return X[:, 0] if len(shape) == 3 else X


def _cpu(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The fused kernel for float32/float64 ``u``; other dtypes take the reference."""
    u = np.ascontiguousarray(u)
    dtype = u.dtype
    if dtype not in (np.float32, np.float64):
        return _reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    batch, dim, length = u.shape
    y = np.empty_like(u)
    last = np.empty((batch, dim, A.shape[1]), dtype=dtype)
    contiguous = lambda X, shape: np.ascontiguousarray(X if X is not None else np.zeros(shape), dtype=dtype)  # noqa: E731
    _fused_forward(u, contiguous(delta, None), contiguous(A, None), _as_4d(B, dim, dtype), _as_4d(C, dim, dtype),
                   contiguous(D, 0), contiguous(delta_bias, 0), contiguous(z, (0, 0, 0)), y, last,
                   bool(delta_softplus), dtype == np.float32)
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


def _backward_cpu(u, dt, A, B, C, dy):
    """The fused backward for float32/float64 arrays of one dtype; others take the reference."""
    u = np.ascontiguousarray(u)
    dtype = u.dtype
    if dtype not in (np.float32, np.float64) or any(np.asarray(x).dtype != dtype for x in (dt, A, B, C)):
        return _backward_reference(u, dt, A, B, C, dy)
    batch, dim, _ = u.shape
    Bx, Cx = _as_4d(B, dim, dtype), _as_4d(C, dim, dtype)
    du, ddt = np.empty_like(u), np.empty_like(u)
    dA = np.zeros((batch,) + A.shape, dtype=dtype)
    dB = np.zeros((batch,) + Bx.shape[1:], dtype=dtype)
    dC = np.zeros((batch,) + Cx.shape[1:], dtype=dtype)
    _fused_backward(u, np.ascontiguousarray(dt), np.ascontiguousarray(A), Bx, Cx,
                    np.ascontiguousarray(dy, dtype=dtype), du, ddt, dA, dB, dC, dtype == np.float32)
    fold = lambda part, X: part if X.shape[0] == batch else part.sum(axis=0, keepdims=True)  # noqa: E731
    return du, ddt, dA.sum(axis=0), _from_4d(fold(dB, Bx), B.shape), _from_4d(fold(dC, Cx), C.shape)


def _backward_reference(u, dt, A, B, C, dy):
    """Gradients by reverse-mode autodiff through :func:`ann.ssm.composed_selective_scan` (the parallel scan)."""
    from .ssm import composed_selective_scan
    from .tensor import Tensor, enable_grad

    xs = [Tensor(x, requires_grad=True) for x in (u, dt, A, B, C)]
    with enable_grad():
        composed_selective_scan(*xs).backward(dy)
    return tuple(x.grad for x in xs)


register(
    "selective_scan_backward",
    reference=_backward_reference,
    cpu=_backward_cpu,
    doc="gradients (du, ddt, dA, dB, dC) of y = C . h, h[t] = exp(dt A) h[t-1] + dt B u, for dy (B, D, L)",
)


def selective_scan_arrays(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, impl=None):
    """Forward-only selective scan on plain arrays, dispatched through the kernel registry."""
    from neuro.kernels import call

    return call("selective_scan", u, delta, A, B, C, D, z, delta_bias, delta_softplus, impl=impl)
