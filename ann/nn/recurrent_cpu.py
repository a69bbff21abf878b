"""numba CPU fast paths for the backward loops of :func:`ann.nn.recurrent.recurrent_scan`.

Backpropagation through time is a loop over steps of one BLAS product
``(B, G*H) @ (G*H, H)`` and some twenty elementwise operations on the gates;
here the whole reverse loop runs compiled, each step's elementwise work fused
into one pass, with no Python work per step. Each function takes and returns
exactly what the NumPy reference loop of the same name in
:mod:`ann.nn.recurrent` does (that loop stays the test oracle and the CuPy
path), reading the arrays that the reference forward loop cached.

The LSTM forward loop is compiled too, for float32 (registered as the kernel
``lstm_forward`` of :mod:`neuro.kernels`, with the NumPy loop as its
reference): its ``tanh`` and sigmoid are a float32 rational approximation that
LLVM vectorizes (pip's numba has no SVML, and a loop calling ``math.tanh``
per element was slower than NumPy), its gates, cell update and output fused in
one pass per step, ``b_hh`` added in that pass, and the backward caches filled
only when asked (inference skips them). The other forward loops stay NumPy.
Shapes: ``g`` and ``out`` ``(T, B, S*H)``, ``acts`` ``(T, B, G*H)``,
``w_hh`` ``(G*H, H)``, ``h0``/``c0`` ``(B, H)``.
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.kernels import register

__all__ = ["rnn_backward", "lstm_backward", "gru_backward", "lstm_forward"]


# ---------------------------------------------------------------------- RNN


@numba.njit(cache=True, nogil=True)
def _rnn_backward(g, out, w_hh, dA, relu):
    T, B, H = out.shape
    dh = np.zeros((B, H), dtype=out.dtype)
    d = np.empty((B, H), dtype=out.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                v = g[t, b, j] + dh[b, j]
                y = out[t, b, j]
                if relu:
                    v = v if y > 0 else 0.0
                else:
                    v = v * (1.0 - y * y)
                d[b, j] = v
                dA[t, b, j] = v
        np.dot(d, w_hh, dh)
    return dh


def rnn_backward(relu: bool):
    def backward(xp, g, out, cache, w_hh, h0, c0):
        dA = np.empty_like(out)
        dh0 = _rnn_backward(np.ascontiguousarray(g, dtype=out.dtype), out, np.ascontiguousarray(w_hh), dA, relu)
        return dA, None, dh0, None

    return backward


# --------------------------------------------------------------------- LSTM


@numba.njit(cache=True, nogil=True)
def _lstm_backward(g, out, acts, tanh_c, w_hh, c0, dA):
    T, B, G = acts.shape
    H = G // 4
    dh = np.zeros((B, H), dtype=acts.dtype)
    dc = np.zeros((B, H), dtype=acts.dtype)
    d = np.empty((B, G), dtype=acts.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                dhv = g[t, b, j] + dh[b, j]
                dcv = g[t, b, H + j] + dc[b, j]
                i = acts[t, b, j]
                f = acts[t, b, H + j]
                gg = acts[t, b, 2 * H + j]
                o = acts[t, b, 3 * H + j]
                tc = tanh_c[t, b, j]
                c_prev = c0[b, j] if t == 0 else out[t - 1, b, H + j]
                dcv = dcv + dhv * o * (1.0 - tc * tc)
                d[b, j] = dcv * gg * i * (1.0 - i)
                d[b, H + j] = dcv * c_prev * f * (1.0 - f)
                d[b, 2 * H + j] = dcv * i * (1.0 - gg * gg)
                d[b, 3 * H + j] = dhv * tc * o * (1.0 - o)
                dc[b, j] = dcv * f
        dA[t] = d
        np.dot(d, w_hh, dh)
    return dh, dc


@numba.njit(cache=True, inline="always", error_model="numpy")
def _tanh32(x):  # pragma: no cover - compiled
    """float32 ``tanh`` as Eigen's ``ptanh_float``: a 13/6 odd/even rational on ``[-7.905, 7.905]``.

    Within 4e-7 of the exact value (7 ulp near |x| = 5.8, a few elsewhere); ``tanh(x) = x``
    below 4e-4 in magnitude. ``min``/``max`` clamp (NaN becomes a bound, unlike ``np.tanh``).
    """
    v = min(max(x, np.float32(-7.90531110763549805)), np.float32(7.90531110763549805))
    v2 = v * v
    p = np.float32(-2.76076847742355e-16)
    p = p * v2 + np.float32(2.00018790482477e-13)
    p = p * v2 + np.float32(-8.60467152213735e-11)
    p = p * v2 + np.float32(5.12229709037114e-08)
    p = p * v2 + np.float32(1.48572235717979e-05)
    p = p * v2 + np.float32(6.37261928875436e-04)
    p = p * v2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * v2 + np.float32(1.18534705686654e-04)
    q = q * v2 + np.float32(2.26843463243900e-03)
    q = q * v2 + np.float32(4.89352518554385e-03)
    return v if abs(v) < np.float32(0.0004) else v * p / q


# error_model="numpy": Python's ZeroDivisionError check on the division keeps LLVM from vectorizing
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lstm_step32(z, a_t, b_hh, h, c, out_t, acts_t, tanh_c_t, keep):  # pragma: no cover - compiled
    """One step after ``z = h W_hh^T``: gates, cell and hidden state in one pass; ``h``, ``c`` updated in place.

    Writes ``out_t = [h, c]`` and, when ``keep``, the gates after their nonlinearities and ``tanh(c)``.
    """
    B, G = z.shape
    H = G // 4
    half = np.float32(0.5)
    for r in range(B):
        zr, ar, cr, hr = z[r], a_t[r], c[r], h[r]
        for j in range(G):
            zr[j] += ar[j] + b_hh[j]
        for j in range(2 * H):
            zr[j] = half * _tanh32(half * zr[j]) + half
        for j in range(2 * H, 3 * H):
            zr[j] = _tanh32(zr[j])
        for j in range(3 * H, G):
            zr[j] = half * _tanh32(half * zr[j]) + half
        for j in range(H):
            cr[j] = zr[H + j] * cr[j] + zr[j] * zr[2 * H + j]
            hr[j] = _tanh32(cr[j])
        if keep:
            acts_t[r] = zr
            tanh_c_t[r] = hr
        for j in range(H):
            hr[j] *= zr[3 * H + j]
            out_t[r, j] = hr[j]
            out_t[r, H + j] = cr[j]


def _lstm_forward_cpu(a, w_hh, b_hh, h0, c0, keep=True):
    """float32 arrays (others take the reference): ``(out, (acts, tanh_c) or None)``.

    The step's matrix product stays with NumPy's BLAS (numba's ``np.dot`` calls SciPy's
    BLAS, whose threads the caller's ``threadpoolctl`` limits may not reach).
    """
    if any(x is not None and x.dtype != np.float32 for x in (a, w_hh, b_hh, h0, c0)):
        return _lstm_forward_reference(a, w_hh, b_hh, h0, c0, keep)
    T, B, G = a.shape
    out = np.empty((T, B, G // 2), dtype=np.float32)
    acts = np.empty((T, B, G) if keep else (T, 0, 0), dtype=np.float32)
    tanh_c = np.empty((T, B, G // 4) if keep else (T, 0, 0), dtype=np.float32)
    b = np.zeros(G, np.float32) if b_hh is None else np.ascontiguousarray(b_hh)
    w_t, h, c = w_hh.T, np.array(h0, order="C"), np.array(c0, order="C")
    z = np.empty((B, G), dtype=np.float32)
    for t in range(T):
        np.matmul(h, w_t, out=z)
        _lstm_step32(z, a[t], b, h, c, out[t], acts[t], tanh_c[t], keep)
    return out, ((acts, tanh_c) if keep else None)


def _lstm_forward_reference(a, w_hh, b_hh, h0, c0, keep=True):
    """The NumPy-API loop of :mod:`ann.nn.recurrent` (any array module)."""
    from neuro.backend import array_module

    from .recurrent import _lstm_forward

    out, cache = _lstm_forward(array_module(a), a, w_hh, b_hh, h0, c0)
    return out, (cache if keep else None)


register(
    "lstm_forward",
    reference=_lstm_forward_reference,
    cpu=_lstm_forward_cpu,
    doc="LSTM over time from the input projection a (T, B, 4H): (out (T, B, 2H) = [h, c], cache or None)",
)


def lstm_forward(xp, a, w_hh, b_hh, h0, c0, keep=True):
    """The forward loop in :func:`ann.nn.recurrent.recurrent_scan`'s convention, through the kernel registry."""
    from neuro.kernels import call

    return call("lstm_forward", a, w_hh, b_hh, h0, c0, keep)


def lstm_backward(xp, g, out, cache, w_hh, h0, c0):
    acts, tanh_c = cache
    dA = np.empty_like(acts)
    g = np.ascontiguousarray(g, dtype=out.dtype)
    dh0, dc0 = _lstm_backward(g, out, acts, tanh_c, np.ascontiguousarray(w_hh), np.ascontiguousarray(c0), dA)
    return dA, None, dh0, dc0


# ---------------------------------------------------------------------- GRU


@numba.njit(cache=True, nogil=True)
def _gru_backward(g, out, acts, gh_n, w_hh, h0, dA, dGH):
    T, B, G = acts.shape
    H = G // 3
    dh = np.zeros((B, H), dtype=acts.dtype)
    d = np.empty((B, G), dtype=acts.dtype)
    back = np.empty((B, H), dtype=acts.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                dhv = g[t, b, j] + dh[b, j]
                r = acts[t, b, j]
                u = acts[t, b, H + j]
                n = acts[t, b, 2 * H + j]
                h_prev = h0[b, j] if t == 0 else out[t - 1, b, j]
                d_an = dhv * (1.0 - u) * (1.0 - n * n)
                d_ar = d_an * gh_n[t, b, j] * r * (1.0 - r)
                d_au = dhv * (h_prev - n) * u * (1.0 - u)
                dA[t, b, j] = d_ar
                dA[t, b, H + j] = d_au
                dA[t, b, 2 * H + j] = d_an
                d[b, j] = d_ar
                d[b, H + j] = d_au
                d[b, 2 * H + j] = d_an * r
                dh[b, j] = dhv * u
        dGH[t] = d
        np.dot(d, w_hh, back)
        dh += back
    return dh


def gru_backward(xp, g, out, cache, w_hh, h0, c0):
    acts, gh_n = cache
    dA = np.empty_like(acts)
    dGH = np.empty_like(acts)
    g = np.ascontiguousarray(g, dtype=out.dtype)
    dh0 = _gru_backward(g, out, acts, gh_n, np.ascontiguousarray(w_hh), np.ascontiguousarray(h0), dA, dGH)
    return dA, dGH, dh0, None
