"""numba CPU fast paths for the backward loops of :func:`ann.nn.recurrent.recurrent_scan`.

Backpropagation through time is a loop over steps of one BLAS product
``(B, G*H) @ (G*H, H)`` and some twenty elementwise operations on the gates;
here the whole reverse loop runs compiled, each step's elementwise work fused
into one pass, with no Python work per step. Each function takes and returns
exactly what the NumPy reference loop of the same name in
:mod:`ann.nn.recurrent` does (that loop stays the test oracle and the CuPy
path), reading the arrays that the reference forward loop cached.

The LSTM forward loop has a float32 fast path too (registered as the kernel
``lstm_forward`` of :mod:`neuro.kernels`, with the NumPy loop as its
reference): per step one BLAS product, two NumPy ``tanh`` calls (SIMD; pip's
numba has no SVML, so a compiled ``tanh`` is scalar) and three compiled passes
for the rest of the gate arithmetic (``b_hh`` added there, no ``a + b_hh``
temporary); the backward caches are filled only when asked (inference skips
them). The other forward loops stay NumPy.

Without gradients a whole LSTM layer is one registered kernel,
``lstm_inference``: from a batch of 5 up, each step is a single packed product
``[W_ih W_hh] [x_t; h]`` (:mod:`ann.gemm_kernel`, register-blocked, the gates
``(4H, B)`` with the batch innermost) with the bias and the sigmoid's halving
applied as it stores, then the same ``tanh`` calls and two compiled passes; no
``(T, B, 4H)`` projection is ever formed.
Shapes: ``g`` and ``out`` ``(T, B, S*H)``, ``acts`` ``(T, B, G*H)``,
``w_hh`` ``(G*H, H)``, ``h0``/``c0`` ``(B, H)``.
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.kernels import register

__all__ = ["rnn_backward", "lstm_backward", "gru_backward", "lstm_forward", "lstm_inference"]


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


_HALF = np.float32(0.5)


@numba.njit(cache=True, nogil=True)
def _lstm_pre32(zT, z, a_t, b_hh):  # pragma: no cover - compiled
    """``z = zT.T + a_t + b_hh``, halved on the sigmoid gates (``sigmoid(x) = tanh(x / 2) / 2 + 1 / 2``)."""
    B, G = z.shape
    H = G // 4
    for r in range(B):
        zr, ar = z[r], a_t[r]
        for j in range(2 * H):
            zr[j] = _HALF * (zT[j, r] + ar[j] + b_hh[j])
        for j in range(2 * H, 3 * H):
            zr[j] = zT[j, r] + ar[j] + b_hh[j]
        for j in range(3 * H, G):
            zr[j] = _HALF * (zT[j, r] + ar[j] + b_hh[j])


@numba.njit(cache=True, nogil=True)
def _lstm_cell32(z, c):  # pragma: no cover - compiled
    """After ``tanh(z)``: the sigmoid gates finished, then ``c = f c + i g`` in place."""
    B, G = z.shape
    H = G // 4
    for r in range(B):
        zr, cr = z[r], c[r]
        for j in range(2 * H):
            zr[j] = _HALF * zr[j] + _HALF
        for j in range(3 * H, G):
            zr[j] = _HALF * zr[j] + _HALF
        for j in range(H):
            cr[j] = zr[H + j] * cr[j] + zr[j] * zr[2 * H + j]


@numba.njit(cache=True, nogil=True)
def _lstm_out32(z, c, tanh_c, hT, out_t):  # pragma: no cover - compiled
    """``h = o tanh(c)``: ``out_t = [h, c]``, and ``hT = h.T`` for the next step's product."""
    B, G = z.shape
    H = G // 4
    for r in range(B):
        zr, tr, o = z[r], tanh_c[r], out_t[r]
        for j in range(H):
            o[j] = zr[3 * H + j] * tr[j]
        o[H:] = c[r]
        for j in range(H):
            hT[j, r] = o[j]


def _lstm_forward_cpu(a, w_hh, b_hh, h0, c0, keep=True):
    """float32 arrays (others take the reference): ``(out, (acts, tanh_c) or None)``.

    Per step: the product ``W_hh h^T`` (the transposed state keeps OpenBLAS on its faster
    path for this skinny shape, ~25% against ``h W_hh^T``) and the ``tanh`` of all gates
    and of the cell with NumPy (BLAS, SIMD), everything else in three compiled passes. numba's own
    ``np.dot`` would call SciPy's BLAS, whose threads the caller's ``threadpoolctl``
    limits may not reach; a compiled ``tanh`` (no SVML) would be scalar or approximate.
    """
    if any(x is not None and x.dtype != np.float32 for x in (a, w_hh, b_hh, h0, c0)):
        return _lstm_forward_reference(a, w_hh, b_hh, h0, c0, keep)
    T, B, G = a.shape
    H = G // 4
    out = np.empty((T, B, 2 * H), dtype=np.float32)
    acts = np.empty((T, B, G), dtype=np.float32) if keep else None
    tanh_c = np.empty((T, B, H), dtype=np.float32) if keep else None
    z_scratch, tc_scratch = np.empty((B, G), dtype=np.float32), np.empty((B, H), dtype=np.float32)
    zT = np.empty((G, B), dtype=np.float32)
    b = np.zeros(G, np.float32) if b_hh is None else np.ascontiguousarray(b_hh)
    # copies: hT is written every step (ascontiguousarray(h0.T) is h0 itself when B == 1)
    w, hT, c = np.ascontiguousarray(w_hh), np.array(h0.T, order="C"), np.array(c0, order="C")
    for t in range(T):
        z = acts[t] if keep else z_scratch
        tc = tanh_c[t] if keep else tc_scratch
        np.matmul(w, hT, out=zT)
        _lstm_pre32(zT, z, a[t], b)
        np.tanh(z, out=z)
        _lstm_cell32(z, c)
        np.tanh(c, out=tc)
        _lstm_out32(z, c, tc, hT, out[t])
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


# ---------------------------------------------------------- LSTM inference


@numba.njit(cache=True, nogil=True)
def _stack_input(x_t, s):  # pragma: no cover - compiled
    """``s[:I, :B] = x_t.T``: the step's input under the state in the stacked operand (``x_t`` ``(B, I)``, any strides)."""
    B, I = x_t.shape
    for k0 in range(0, I, 16):
        for r in range(B):
            for k in range(k0, min(k0 + 16, I)):
                s[k, r] = x_t[r, k]


@numba.njit(cache=True, nogil=True)
def _lstm_cell_gb(z, c):  # pragma: no cover - compiled
    """After ``tanh`` of the (halved) gates ``z`` ``(4H, N)``: ``c = f c + i g`` in place (``c`` ``(H, N)``),
    ``o`` finished in ``z``."""
    H, N = c.shape
    for j in range(H):
        for r in range(N):
            c[j, r] = (_HALF * z[H + j, r] + _HALF) * c[j, r] + (_HALF * z[j, r] + _HALF) * z[2 * H + j, r]
            z[3 * H + j, r] = _HALF * z[3 * H + j, r] + _HALF


@numba.njit(cache=True, nogil=True)
def _lstm_hidden_gb(z, tanh_c, s, h_t, x_next):  # pragma: no cover - compiled
    """``h = o tanh(c)`` into the state rows of ``s`` and into ``h_t`` ``(B, H)`` (any strides);
    then the next step's input ``x_next`` ``(B, I)`` into the input rows of ``s`` (none if it has no rows)."""
    H, N = tanh_c.shape
    B, I = h_t.shape[0], s.shape[0] - H
    for j in range(H):
        for r in range(N):
            s[I + j, r] = z[3 * H + j, r] * tanh_c[j, r]
    for j0 in range(0, H, 16):
        for r in range(B):
            for j in range(j0, min(j0 + 16, H)):
                h_t[r, j] = s[I + j, r]
    if x_next.shape[0]:
        _stack_input(x_next, s)


#: Below this batch the product pads the state to 8 columns for little gain: at H = 256, B = 4 the
#: fused layer took 21.9 ms against 20.2 ms for one input projection and the step loop (B = 8: 23.6 / 32.5).
_FUSED_MIN_BATCH = 5


def _lstm_inference_cpu(x, w_ih, w_hh, bias, h0, c0, out):
    """float32 arrays (others take the reference): both products of a step as one, ``[W_ih W_hh] [x_t; h]``,
    by :func:`ann.gemm_kernel.product` (weights packed once per call; the batch padded to a multiple of 8
    columns, the gates ``(4H, N)`` with the batch innermost), the bias and the sigmoid's halving applied as
    it stores; then two NumPy ``tanh`` calls (SIMD) and two compiled passes. Small batches
    (``B < _FUSED_MIN_BATCH``) take one input projection and :func:`_lstm_forward_cpu`."""
    from ..gemm_kernel import COLUMNS, ROWS, _product, pack_rows  # _product: product() without its checks

    if not _float32(x, w_ih, w_hh, bias, h0, c0):
        return _lstm_inference_reference(x, w_ih, w_hh, bias, h0, c0, out)
    T, B, I = x.shape
    if B < _FUSED_MIN_BATCH:
        return _lstm_projected(_lstm_forward_cpu, x, w_ih, w_hh, bias, h0, c0, out)
    G = w_hh.shape[0]
    H = G // 4
    N = -(-B // COLUMNS) * COLUMNS
    wp = pack_rows(np.concatenate([w_ih, w_hh], axis=1))
    rows = wp.shape[0] * ROWS
    add, mul = np.zeros(rows, np.float32), np.ones(rows, np.float32)
    if bias is not None:
        add[:G] = bias
    mul[: 2 * H] = mul[3 * H : G] = _HALF  # sigmoid(x) = tanh(x / 2) / 2 + 1 / 2
    s = np.zeros((I + H, N), np.float32)  # [x_t; h], the batch innermost (padding columns stay finite)
    s[I:, :B] = h0.T
    c = np.zeros((H, N), np.float32)
    c[:, :B] = c0.T
    z, tanh_c = np.empty((rows, N), np.float32), np.empty((H, N), np.float32)
    gates = z[:G]
    _stack_input(x[0], s)
    for t in range(T):
        _product(wp, s, z, add, mul)
        np.tanh(gates, out=gates)
        _lstm_cell_gb(gates, c)
        np.tanh(c, out=tanh_c)
        _lstm_hidden_gb(gates, tanh_c, s, out[t], x[t + 1] if t + 1 < T else x[0, :0])
    return s[I:, :B].T.copy(), c[:, :B].T.copy()


def _lstm_projected(forward, x, w_ih, w_hh, bias, h0, c0, out):
    """One input projection ``x W_ih^T``, then ``forward(a, w_hh, bias, h0, c0, keep=False)``; ``h_t`` into ``out``."""
    packed, _ = forward(x @ w_ih.T, w_hh, bias, h0, c0, False)
    H = w_hh.shape[1]
    out[...] = packed[:, :, :H]
    return packed[-1, :, :H].copy(), packed[-1, :, H:].copy()


def _lstm_inference_reference(x, w_ih, w_hh, bias, h0, c0, out):
    """The NumPy-API forward loop of :mod:`ann.nn.recurrent` after one input projection (any array module)."""
    return _lstm_projected(_lstm_forward_reference, x, w_ih, w_hh, bias, h0, c0, out)


def _float32(*arrays) -> bool:
    return all(a is None or a.dtype == np.float32 for a in arrays)


register(
    "lstm_inference",
    reference=_lstm_inference_reference,
    cpu=_lstm_inference_cpu,
    doc="one LSTM layer without gradients: x (T, B, I), w_ih (4H, I), w_hh (4H, H), bias (4H,) or None, "
    "h0, c0 (B, H); writes h_t into out (T, B, H) (any strides); returns (h_T, c_T)",
)


def lstm_inference(x, w_ih, w_hh, bias, h0, c0, out):
    """One LSTM layer without gradients (arrays), through the kernel registry: see ``lstm_inference`` there."""
    from neuro.kernels import call

    return call("lstm_inference", x, w_ih, w_hh, bias, h0, c0, out)


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
