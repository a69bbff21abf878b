"""numba CPU fast paths for the backward loops of :func:`ann.nn.recurrent.recurrent_scan`.

Backpropagation through time is a loop over steps of one BLAS product
``(B, G*H) @ (G*H, H)`` and some twenty elementwise operations on the gates;
here the whole reverse loop runs compiled, each step's elementwise work fused
into one pass, with no Python work per step. Each function takes and returns
exactly what the NumPy reference loop of the same name in
:mod:`ann.nn.recurrent` does (that loop stays the test oracle and the CuPy
path), reading the arrays that the reference forward loop cached.

The forward loops are not compiled: their cost is in the transcendental
functions (``tanh``, the sigmoid), which NumPy evaluates with SIMD and a
scalar numba loop (without SVML) does not, so compiling them made long
sequences slower. Shapes: ``g`` and ``out`` ``(T, B, S*H)``, ``acts``
``(T, B, G*H)``, ``w_hh`` ``(G*H, H)``, ``h0``/``c0`` ``(B, H)``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["rnn_backward", "lstm_backward", "gru_backward"]


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
