"""Recurrent layers with PyTorch's parameter names, shapes and gate order.

``RNN`` (tanh or relu), ``LSTM`` and ``GRU`` run a whole sequence; ``RNNCell``,
``LSTMCell`` and ``GRUCell`` take one step. Weights are laid out exactly as in
``torch.nn``, so a PyTorch state dict converted to NumPy loads directly:

========================  ==========================  ==================
parameter                 shape                       gate blocks (rows)
========================  ==========================  ==================
``weight_ih_l{k}``        ``(G * H, in_k)``           LSTM ``i, f, g, o``
``weight_hh_l{k}``        ``(G * H, H)``              GRU ``r, z, n``
``bias_ih_l{k}``          ``(G * H,)``                RNN one block
``bias_hh_l{k}``          ``(G * H,)``
========================  ==========================  ==================

with ``G = 4`` (LSTM), ``3`` (GRU), ``1`` (RNN), ``in_0 = input_size`` and
``in_k = D * hidden_size`` above (``D = 2`` when ``bidirectional``, whose reverse
direction has the same parameters again with the suffix ``_reverse``). The cells
use the same names without ``_l{k}``.

Equations (``*`` elementwise, ``s`` the logistic sigmoid)::

    RNN   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)        (or relu)
    LSTM  i, f, g, o = s(.), s(.), tanh(.), s(.) of W_ih x + b_ih + W_hh h + b_hh
          c' = f * c + i * g ;  h' = o * tanh(c')
    GRU   r = s(W_ir x + b_ir + W_hr h + b_hr) ; z = s(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) ;  h' = (1 - z) * n + z * h

How it runs: for each layer, the input projection ``W_ih x + b_ih`` of every
time step is one matrix product; the recurrence over time is then a single
autograd node (:func:`recurrent_scan`) whose forward loop does one
``(B, H) @ (H, G*H)`` product and a few fused elementwise operations per step,
and whose hand-written backward pass (backpropagation through time) runs the
loop in reverse and forms ``dL/dW_hh`` with one matrix product over all steps.
The loops here use only the NumPy API on the arrays' module, so they run on
CuPy arrays as well; on NumPy float32/float64 arrays the backward loop runs
compiled (numba, :mod:`ann.nn.recurrent_cpu`), checked against these loops.
An LSTM that no gradient will reach (``no_grad``, or nothing requiring one)
runs each layer as one fused kernel instead (``lstm_inference``: both products
of a step in one packed product), whose outputs agree with the autograd path to
float32 rounding, as PyTorch's inference path does with its own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype
from neuro.validation import check_int

from .. import functional as F
from ..generator import make_rng
from ..tensor import Tensor, as_tensor, concatenate, is_grad_enabled, make_op, stack
from .module import Module, Parameter

__all__ = ["recurrent_scan", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

#: cell kind -> (number of gate blocks G, number of state tensors)
_KINDS = {"rnn_tanh": (1, 1), "rnn_relu": (1, 1), "lstm": (4, 2), "gru": (3, 1)}


# --------------------------------------------------------------- elementwise


def _sigmoid(xp, x, out=None):
    """The logistic function as ``0.5 * tanh(x / 2) + 0.5`` (no overflow; one transcendental)."""
    out = xp.multiply(x, 0.5, out=out)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# -------------------------------------------------------- forward / backward
# Each kind has a forward loop ``(xp, a, w_hh, b_hh, h0, c0, keep) -> (packed, cache)``
# (``keep=False``: no gradient will be asked, a loop may skip its cache; the NumPy ones
# build it as they go)
# and a backward loop ``(xp, g, packed, cache, w_hh, h0, c0) -> (dA, dGH, dh0, dc0)``:
# ``a`` (T, B, G*H) is the input projection, ``packed`` (T, B, S*H) the hidden
# states (and, for the LSTM, the cell states beside them), ``dA`` the gradient
# of ``a`` and ``dGH`` that of the hidden projection ``W_hh h + b_hh`` (None
# where it equals ``dA``).


def _rnn_forward(relu: bool):
    def forward(xp, a, w_hh, b_hh, h0, c0, keep=True):
        T, B, H = a.shape
        pre = a if b_hh is None else a + b_hh
        out = xp.empty((T, B, H), dtype=a.dtype)
        w_t = w_hh.T
        h = h0
        for t in range(T):
            z = xp.matmul(h, w_t, out=out[t])
            z += pre[t]
            if relu:
                xp.maximum(z, 0, out=z)
            else:
                xp.tanh(z, out=z)
            h = z
        return out, None

    return forward


def _rnn_backward(relu: bool):
    def backward(xp, g, out, cache, w_hh, h0, c0):
        T = out.shape[0]
        dA = xp.empty_like(out)
        dh = None
        for t in range(T - 1, -1, -1):
            d = g[t] if dh is None else g[t] + dh
            h = out[t]
            if relu:
                xp.multiply(d, h > 0, out=dA[t])
            else:
                xp.multiply(d, 1 - h * h, out=dA[t])
            dh = dA[t] @ w_hh
        return dA, None, dh, None

    return backward


def _lstm_forward(xp, a, w_hh, b_hh, h0, c0, keep=True):
    T, B, G = a.shape
    H = G // 4
    pre = a if b_hh is None else a + b_hh
    out = xp.empty((T, B, 2 * H), dtype=a.dtype)  # [h_t, c_t]
    acts = xp.empty((T, B, G), dtype=a.dtype)  # i, f, g, o after their nonlinearities
    tanh_c = xp.empty((T, B, H), dtype=a.dtype)
    w_t = w_hh.T
    h, c = h0, c0
    for t in range(T):
        z = xp.matmul(h, w_t, out=acts[t])
        z += pre[t]
        _sigmoid(xp, z[:, : 2 * H], out=z[:, : 2 * H])
        xp.tanh(z[:, 2 * H : 3 * H], out=z[:, 2 * H : 3 * H])
        _sigmoid(xp, z[:, 3 * H :], out=z[:, 3 * H :])
        i, f, gg, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        c_new = out[t, :, H:]
        xp.multiply(f, c, out=c_new)
        c_new += i * gg
        xp.tanh(c_new, out=tanh_c[t])
        xp.multiply(o, tanh_c[t], out=out[t, :, :H])
        h, c = out[t, :, :H], c_new
    return out, (acts, tanh_c)


def _lstm_backward(xp, g, out, cache, w_hh, h0, c0):
    acts, tanh_c = cache
    T, B, G = acts.shape
    H = G // 4
    dA = xp.empty_like(acts)
    dh = dc = None
    for t in range(T - 1, -1, -1):
        gh, gc = g[t, :, :H], g[t, :, H:]
        dh = gh if dh is None else gh + dh
        dc = gc if dc is None else gc + dc
        z = acts[t]
        i, f, gg, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        tc = tanh_c[t]
        c_prev = c0 if t == 0 else out[t - 1, :, H:]
        dc = dc + dh * o * (1 - tc * tc)
        d = dA[t]
        xp.multiply(dc * gg, i * (1 - i), out=d[:, :H])
        xp.multiply(dc * c_prev, f * (1 - f), out=d[:, H : 2 * H])
        xp.multiply(dc * i, 1 - gg * gg, out=d[:, 2 * H : 3 * H])
        xp.multiply(dh * tc, o * (1 - o), out=d[:, 3 * H :])
        dc = dc * f
        dh = d @ w_hh
    return dA, None, dh, dc


def _gru_forward(xp, a, w_hh, b_hh, h0, c0, keep=True):
    T, B, G = a.shape
    H = G // 3
    out = xp.empty((T, B, H), dtype=a.dtype)
    acts = xp.empty((T, B, G), dtype=a.dtype)  # r, z, n
    gh_n = xp.empty((T, B, H), dtype=a.dtype)  # W_hn h + b_hn
    w_t = w_hh.T
    h = h0
    for t in range(T):
        gh = h @ w_t
        if b_hh is not None:
            gh += b_hh
        z = acts[t]
        xp.add(a[t, :, : 2 * H], gh[:, : 2 * H], out=z[:, : 2 * H])
        _sigmoid(xp, z[:, : 2 * H], out=z[:, : 2 * H])
        gh_n[t] = gh[:, 2 * H :]
        n = z[:, 2 * H :]
        xp.multiply(z[:, :H], gh_n[t], out=n)
        n += a[t, :, 2 * H :]
        xp.tanh(n, out=n)
        # h' = n + z * (h - n)
        h_new = out[t]
        xp.subtract(h, n, out=h_new)
        h_new *= z[:, H : 2 * H]
        h_new += n
        h = h_new
    return out, (acts, gh_n)


def _gru_backward(xp, g, out, cache, w_hh, h0, c0):
    acts, gh_n = cache
    T, B, G = acts.shape
    H = G // 3
    dA = xp.empty_like(acts)
    dGH = xp.empty_like(acts)
    dh = None
    for t in range(T - 1, -1, -1):
        dh = g[t] if dh is None else g[t] + dh
        z = acts[t]
        r, u, n = z[:, :H], z[:, H : 2 * H], z[:, 2 * H :]
        h_prev = h0 if t == 0 else out[t - 1]
        dn = dh * (1 - u)
        d_an = xp.multiply(dn, 1 - n * n, out=dA[t, :, 2 * H :])
        xp.multiply(d_an, r, out=dGH[t, :, 2 * H :])
        xp.multiply(d_an * gh_n[t], r * (1 - r), out=dA[t, :, :H])
        xp.multiply(dh * (h_prev - n), u * (1 - u), out=dA[t, :, H : 2 * H])
        dGH[t, :, : 2 * H] = dA[t, :, : 2 * H]
        dh = dh * u + dGH[t] @ w_hh
    return dA, dGH, dh, None


_LOOPS = {
    "rnn_tanh": (_rnn_forward(False), _rnn_backward(False)),
    "rnn_relu": (_rnn_forward(True), _rnn_backward(True)),
    "lstm": (_lstm_forward, _lstm_backward),
    "gru": (_gru_forward, _gru_backward),
}


_IMPLS = ("reference", "cpu")


def _cpu_loops(kind: str) -> tuple:
    """The forward and backward loops of :mod:`ann.nn.recurrent_cpu` (imported on first use): numba-compiled
    backward loops, the compiled LSTM forward, the NumPy forward loops of the other kinds."""
    from . import recurrent_cpu as C

    if kind.startswith("rnn"):
        return _LOOPS[kind][0], C.rnn_backward(kind == "rnn_relu")
    if kind == "lstm":
        return C.lstm_forward, C.lstm_backward
    return _LOOPS[kind][0], C.gru_backward


def recurrent_scan(kind: str, xproj, w_hh, b_hh=None, h0=None, c0=None, *, impl: str | None = None) -> Tensor:
    """Run one recurrent layer over time as a single differentiable operation.

    Parameters
    ----------
    kind : ``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"`` or ``"gru"``.
    xproj : Tensor ``(T, B, G*H)``, time-major: the input projection ``x_t @ W_ih.T + b_ih``
        of every step (gate blocks in PyTorch's order).
    w_hh : Tensor ``(G*H, H)``; ``b_hh``: optional Tensor ``(G*H,)``.
    h0, c0 : optional Tensors ``(B, H)`` (zeros if omitted); ``c0`` only for the LSTM.

    Returns
    -------
    Tensor ``(T, B, H)`` of the hidden states ``h_1 .. h_T``; for the LSTM
    ``(T, B, 2*H)`` with the cell states ``c_t`` in the second half of the last axis.
    Gradients flow to ``xproj``, ``w_hh``, ``b_hh``, ``h0`` and ``c0``.

    ``impl``: ``"reference"`` (NumPy-API loops; the only choice on CuPy arrays) or
    ``"cpu"`` (the backward loops and the LSTM forward compiled with numba, :mod:`ann.nn.recurrent_cpu`);
    None picks ``"cpu"`` for float32/float64 NumPy arrays.
    """
    if kind not in _LOOPS:
        raise ValueError(f"kind must be one of {sorted(_LOOPS)}, got {kind!r}")
    n_gates, n_states = _KINDS[kind]
    xproj, w_hh = as_tensor(xproj), as_tensor(w_hh)
    b_hh, h0, c0 = (None if t is None else as_tensor(t) for t in (b_hh, h0, c0))
    if xproj.ndim != 3 or xproj.shape[0] < 1:
        raise ValueError(f"xproj must have shape (T, B, G*H) with T >= 1, got {xproj.shape}")
    T, B, GH = xproj.shape
    if w_hh.ndim != 2 or w_hh.shape[0] != GH or w_hh.shape[0] != n_gates * w_hh.shape[1]:
        raise ValueError(f"w_hh must have shape ({GH}, {GH // n_gates}) for kind {kind!r}, got {w_hh.shape}")
    H = w_hh.shape[1]
    if b_hh is not None and b_hh.shape != (GH,):
        raise ValueError(f"b_hh must have shape ({GH},), got {b_hh.shape}")
    xp = array_module(xproj.data)
    dtype = xproj.dtype
    for name, tns in (("w_hh", w_hh), ("b_hh", b_hh), ("h0", h0), ("c0", c0)):
        if tns is not None and tns.dtype != dtype:
            raise TypeError(f"{name} has dtype {tns.dtype} but xproj has dtype {dtype}; cast one of them")
    if h0 is None:
        h0 = Tensor(xp.zeros((B, H), dtype=dtype))
    if n_states == 2 and c0 is None:
        c0 = Tensor(xp.zeros((B, H), dtype=dtype))
    for name, tns in (("h0", h0), ("c0", c0 if n_states == 2 else None)):
        if tns is not None and tns.shape != (B, H):
            raise ValueError(f"{name} must have shape (B, H) = ({B}, {H}), got {tns.shape}")

    compiled_ok = xp is np and dtype in (np.float32, np.float64)
    if impl is None:
        impl = "cpu" if compiled_ok else "reference"
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {_IMPLS} or None, got {impl!r}")
    if impl == "cpu" and not compiled_ok:
        raise ValueError(f"impl='cpu' needs float32 or float64 NumPy arrays, got {dtype} {type(xproj.data).__name__}")
    forward, backward = _LOOPS[kind] if impl == "reference" else _cpu_loops(kind)
    c0d = c0.data if n_states == 2 else None
    parents = [xproj, w_hh, h0]
    if b_hh is not None:
        parents.append(b_hh)
    if n_states == 2:
        parents.append(c0)
    keep = is_grad_enabled() and any(p.requires_grad for p in parents)  # no backward caches for inference
    packed, cache = forward(xp, xproj.data, w_hh.data, None if b_hh is None else b_hh.data, h0.data, c0d, keep)

    def grad_fn(g):
        dA, dGH, dh0, dc0 = backward(xp, g, packed, cache, w_hh.data, h0.data, c0d)
        if dGH is None:
            dGH = dA
        hidden = packed[:, :, :H]
        h_prev = xp.concatenate([h0.data[None], hidden[:-1]], axis=0) if T > 1 else h0.data[None]
        dw = dGH.reshape(T * B, GH).T @ h_prev.reshape(T * B, H) if w_hh.requires_grad else None
        grads = [dA, dw, dh0]
        if b_hh is not None:
            grads.append(dGH.sum(axis=(0, 1)) if b_hh.requires_grad else None)
        if n_states == 2:
            grads.append(dc0)
        return tuple(grads)

    return make_op(packed, tuple(parents), grad_fn, f"recurrent_scan[{kind}]")


# ------------------------------------------------------------------ modules



def _kind(mode: str, nonlinearity: str) -> str:
    if mode != "rnn":
        return mode
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return f"rnn_{nonlinearity}"


def _as_input(x, dtype, input_size: int, batched_ndim: int, what: str) -> Tensor:
    """``x`` as a Tensor of ``dtype`` (plain arrays are cast; Tensors must match), last axis ``input_size``."""
    if isinstance(x, Tensor):
        if x.dtype != dtype:
            raise TypeError(f"{what} has dtype {x.dtype} but the layer's parameters are {dtype}; cast it (x.astype)")
    else:
        arr = np.asarray(x) if not hasattr(x, "__cuda_array_interface__") else x
        x = Tensor(arr, dtype=dtype)
    if x.ndim not in (batched_ndim, batched_ndim - 1):
        raise ValueError(
            f"{what} must have {batched_ndim} dimensions (batched) or {batched_ndim - 1} (unbatched), got shape {x.shape}"
        )
    if x.shape[-1] != input_size:
        raise ValueError(f"{what} must have input_size={input_size} features on its last axis, got shape {x.shape}")
    return x


def _as_state(h, dtype, expected: tuple, what: str) -> Tensor:
    if not isinstance(h, Tensor):
        h = Tensor(np.asarray(h) if not hasattr(h, "__cuda_array_interface__") else h, dtype=dtype)
    elif h.dtype != dtype:
        raise TypeError(f"{what} has dtype {h.dtype} but the layer's parameters are {dtype}")
    if h.shape != expected:
        raise ValueError(f"{what} must have shape {expected}, got {h.shape}")
    return h


def _uniform_parameter(shape: tuple, bound: float, dtype, rng) -> Parameter:
    xp = array_module()
    return Parameter(xp.asarray(rng.uniform(-bound, bound, size=shape), dtype=dtype))


class _RNNBase(Module):
    """Shared implementation of :class:`RNN`, :class:`LSTM` and :class:`GRU`."""

    mode = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
        seed=None,
    ):
        super().__init__()
        self.input_size = check_int(input_size, "input_size")
        self.hidden_size = check_int(hidden_size, "hidden_size")
        self.num_layers = check_int(num_layers, "num_layers")
        self.kind = _kind(self.mode, nonlinearity)
        self.nonlinearity = nonlinearity
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        dtype = resolve_dtype(dtype, ANN_DTYPE)
        rng = make_rng(seed)
        self._dropout_rng = rng
        n_gates = _KINDS[self.kind][0]
        H = self.hidden_size
        bound = 1.0 / math.sqrt(H)
        for k in range(self.num_layers):
            fan_in = self.input_size if k == 0 else H * self.num_directions
            for sfx in ("", "_reverse")[: self.num_directions]:
                setattr(self, f"weight_ih_l{k}{sfx}", _uniform_parameter((n_gates * H, fan_in), bound, dtype, rng))
                setattr(self, f"weight_hh_l{k}{sfx}", _uniform_parameter((n_gates * H, H), bound, dtype, rng))
                if self.bias:
                    setattr(self, f"bias_ih_l{k}{sfx}", _uniform_parameter((n_gates * H,), bound, dtype, rng))
                    setattr(self, f"bias_hh_l{k}{sfx}", _uniform_parameter((n_gates * H,), bound, dtype, rng))

    @property
    def dtype(self):
        """The parameters' dtype (inputs given as plain arrays are cast to it)."""
        return self._parameters["weight_ih_l0"].dtype

    def _layer_params(self, k: int, sfx: str) -> tuple:
        p = self._parameters
        return (
            p[f"weight_ih_l{k}{sfx}"],
            p[f"weight_hh_l{k}{sfx}"],
            p.get(f"bias_ih_l{k}{sfx}"),
            p.get(f"bias_hh_l{k}{sfx}"),
        )

    def _initial_states(self, hx, batch: int | None) -> tuple:
        """Lists ``(h0, c0)`` over ``layer * num_directions + direction`` (entries None for zeros) from ``hx``."""
        n, H = self.num_layers * self.num_directions, self.hidden_size
        expected = (n, H) if batch is None else (n, batch, H)
        if hx is None:
            return [None] * n, [None] * n
        if self.kind == "lstm":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTM hx must be a tuple (h0, c0), each of shape {expected}")
            h0 = _as_state(hx[0], self.dtype, expected, "h0 (hx[0])")
            c0 = _as_state(hx[1], self.dtype, expected, "c0 (hx[1])")
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{type(self).__name__} hx must be one tensor of shape {expected}, got a {type(hx).__name__}")
            h0, c0 = _as_state(hx, self.dtype, expected, "hx"), None
        if batch is None:  # unbatched: add the batch axis
            h0 = h0.reshape(n, 1, H)
            c0 = None if c0 is None else c0.reshape(n, 1, H)
        return [h0[i] for i in range(n)], [None if c0 is None else c0[i] for i in range(n)]

    def forward(self, input, hx=None):
        """Run the layers over a sequence.

        Parameters
        ----------
        input : ``(T, B, input_size)`` (time-first, the default, as PyTorch) or ``(B, T, input_size)``
            if ``batch_first``;
            or unbatched ``(T, input_size)``.
        hx : optional initial state, zeros if omitted: ``(D * num_layers, B, hidden_size)``
            (``(D * num_layers, hidden_size)`` unbatched), ``D = 2`` if ``bidirectional`` else 1;
            for the LSTM a tuple ``(h0, c0)`` of two such.

        Returns
        -------
        ``(output, h_n)`` (``(output, (h_n, c_n))`` for the LSTM): ``output`` holds the last
        layer's hidden state at every step, shaped as ``input`` with ``D * hidden_size``
        features (forward direction first); ``h_n`` (and ``c_n``) ``(D * num_layers, B, hidden_size)``:
        the final states, ordered layer by layer, forward before reverse (as PyTorch).
        """
        x = _as_input(input, self.dtype, self.input_size, 3, "input")
        batched = x.ndim == 3
        if x.shape[1 if batched and self.batch_first else 0] == 0:
            raise ValueError(f"input must hold at least one time step, got shape {x.shape}")
        time_first = None  # the batch-first input, projected before it is made time-first (no copy of x)
        if batched:
            if self.batch_first:
                time_first, x = x, x.transpose(1, 0, 2)
            batch = x.shape[1]
        else:
            x = x.reshape(x.shape[0], 1, x.shape[1])
            batch = None
        h0s, c0s = self._initial_states(hx, batch)
        if self._fused_inference(x, h0s, c0s):
            return self._lstm_inference(x, h0s, c0s, batched)
        H, D = self.hidden_size, self.num_directions
        lstm = self.kind == "lstm"
        finals_h, finals_c = [], []
        for k in range(self.num_layers):
            outputs = []
            for d, sfx in enumerate(("", "_reverse")[:D]):
                w_ih, w_hh, b_ih, b_hh = self._layer_params(k, sfx)
                if lstm and b_ih is not None:  # both biases added once, inside the scan's own pass
                    b_ih, b_hh = None, b_ih + b_hh
                if k == 0 and time_first is not None:
                    proj = F.linear(time_first, w_ih, b_ih).transpose(1, 0, 2)
                    proj = proj if d == 0 else proj[::-1]
                else:
                    proj = F.linear(x if d == 0 else x[::-1], w_ih, b_ih)
                packed = recurrent_scan(self.kind, proj, w_hh, b_hh, h0s[k * D + d], c0s[k * D + d])
                seq = packed[:, :, :H] if lstm else packed
                outputs.append(seq if d == 0 else seq[::-1])
                finals_h.append(packed[-1, :, :H] if lstm else packed[-1])
                if lstm:
                    finals_c.append(packed[-1, :, H:])
            x = outputs[0] if D == 1 else concatenate(outputs, axis=-1)
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True, seed=self._dropout_rng)
        h_n = stack(finals_h, axis=0)
        c_n = stack(finals_c, axis=0) if lstm else None
        if batched:
            output = x.transpose(1, 0, 2) if self.batch_first else x
        else:
            output = x.reshape(x.shape[0], D * H)
            h_n = h_n.reshape(D * self.num_layers, H)
            c_n = None if c_n is None else c_n.reshape(D * self.num_layers, H)
        return output, ((h_n, c_n) if lstm else h_n)

    def _fused_inference(self, x: Tensor, h0s: list, c0s: list) -> bool:
        """Whether this is an LSTM run that no gradient will reach: then each layer is one fused kernel call."""
        if self.kind != "lstm":
            return False
        tensors = [x, *self.parameters(), *(t for t in h0s + c0s if t is not None)]
        return not (is_grad_enabled() and any(t.requires_grad for t in tensors))

    def _lstm_inference(self, x: Tensor, h0s: list, c0s: list, batched: bool) -> tuple:
        """:meth:`forward` by :func:`ann.nn.recurrent_cpu.lstm_inference`, one call per layer and direction,
        each writing its hidden states straight into the output (``(B, T, D*H)``, C-contiguous, when
        ``batch_first``, as PyTorch's); ``x`` is the time-major input ``(T, B, in)``."""
        from .recurrent_cpu import lstm_inference

        xp, dtype = x.xp, self.dtype
        H, D = self.hidden_size, self.num_directions
        T, B = x.shape[0], x.shape[1]
        seq = x.data
        finals_h, finals_c = [], []
        for k in range(self.num_layers):
            buf = xp.empty((B, T, D * H) if self.batch_first else (T, B, D * H), dtype=dtype)
            out = buf.transpose(1, 0, 2) if self.batch_first else buf  # time-major view
            for d, sfx in enumerate(("", "_reverse")[:D]):
                w_ih, w_hh, b_ih, b_hh = (None if p is None else p.data for p in self._layer_params(k, sfx))
                bias = None if b_ih is None else b_ih + b_hh
                h0, c0 = (xp.zeros((B, H), dtype) if s is None else s.data for s in (h0s[k * D + d], c0s[k * D + d]))
                step = slice(None) if d == 0 else slice(None, None, -1)
                h_n, c_n = lstm_inference(seq[step], w_ih, w_hh, bias, h0, c0, out[step, :, d * H : (d + 1) * H])
                finals_h.append(h_n)
                finals_c.append(c_n)
            seq = out
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                seq = F.dropout(Tensor(seq), self.dropout, True, seed=self._dropout_rng).data
        h_n, c_n = Tensor(xp.stack(finals_h)), Tensor(xp.stack(finals_c))
        if batched:
            return Tensor(buf), (h_n, c_n)
        n = D * self.num_layers
        return Tensor(buf.reshape(T, D * H)), (h_n.reshape(n, H), c_n.reshape(n, H))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "rnn" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    """Elman RNN ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or ``relu``), stacked ``num_layers`` deep.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, dtype=float32, seed=None)``. Parameters are
    ``weight_ih_l{k}`` ``(H, in_k)``, ``weight_hh_l{k}`` ``(H, H)``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` ``(H,)``, all drawn from ``U(-1/sqrt(H), 1/sqrt(H))`` with ``seed``
    (as PyTorch). ``dropout`` applies between layers while training. See
    :meth:`forward` for shapes; returns ``(output, h_n)``.
    """

    mode = "rnn"


class LSTM(_RNNBase):
    """Long short-term memory, gates ``i, f, g, o`` in PyTorch's order, stacked ``num_layers`` deep.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, dtype=float32, seed=None)``. Parameters ``weight_ih_l{k}`` ``(4H, in_k)``,
    ``weight_hh_l{k}`` ``(4H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(4H,)``, drawn from
    ``U(-1/sqrt(H), 1/sqrt(H))``. ``forward(input, (h0, c0)=None)`` returns
    ``(output, (h_n, c_n))``.
    """

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = None, seed=None):
        super().__init__(input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout, bidirectional, dtype, seed)


class GRU(_RNNBase):
    """Gated recurrent unit, gates ``r, z, n`` in PyTorch's order (``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, dtype=float32, seed=None)``. Parameters ``weight_ih_l{k}`` ``(3H, in_k)``,
    ``weight_hh_l{k}`` ``(3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(3H,)``, drawn from
    ``U(-1/sqrt(H), 1/sqrt(H))``. ``forward(input, h0=None)`` returns ``(output, h_n)``.
    """

    mode = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = None, seed=None):
        super().__init__(input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout, bidirectional, dtype, seed)


# -------------------------------------------------------------------- cells


class _CellBase(Module):
    """Shared implementation of the one-step cells."""

    mode = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = None, seed=None):
        super().__init__()
        self.input_size = check_int(input_size, "input_size")
        self.hidden_size = check_int(hidden_size, "hidden_size")
        self.kind = _kind(self.mode, nonlinearity)
        self.nonlinearity = nonlinearity
        self.bias = bool(bias)
        dtype = resolve_dtype(dtype, ANN_DTYPE)
        rng = make_rng(seed)
        G = _KINDS[self.kind][0] * self.hidden_size
        bound = 1.0 / math.sqrt(self.hidden_size)
        self.weight_ih = _uniform_parameter((G, self.input_size), bound, dtype, rng)
        self.weight_hh = _uniform_parameter((G, self.hidden_size), bound, dtype, rng)
        if self.bias:
            self.bias_ih = _uniform_parameter((G,), bound, dtype, rng)
            self.bias_hh = _uniform_parameter((G,), bound, dtype, rng)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    @property
    def dtype(self):
        """The parameters' dtype (inputs given as plain arrays are cast to it)."""
        return self._parameters["weight_ih"].dtype

    def forward(self, input, hx=None):
        """One step: ``input`` ``(B, input_size)`` (or ``(input_size,)``), ``hx`` ``(B, hidden_size)`` or None (zeros).

        Returns ``h'`` ``(B, hidden_size)``; the LSTM cell takes and returns ``(h, c)``.
        """
        x = _as_input(input, self.dtype, self.input_size, 2, "input")
        batched = x.ndim == 2
        B = x.shape[0] if batched else 1
        H = self.hidden_size
        expected = (B, H) if batched else (H,)
        h0 = c0 = None
        if hx is not None:
            if self.kind == "lstm":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"LSTMCell hx must be a tuple (h, c), each of shape {expected}")
                h0 = _as_state(hx[0], self.dtype, expected, "h (hx[0])").reshape(B, H)
                c0 = _as_state(hx[1], self.dtype, expected, "c (hx[1])").reshape(B, H)
            else:
                if isinstance(hx, (tuple, list)):
                    raise TypeError(f"{type(self).__name__} hx must be one tensor of shape {expected}")
                h0 = _as_state(hx, self.dtype, expected, "hx").reshape(B, H)
        xproj = F.linear(x.reshape(1, B, self.input_size), self.weight_ih, self.bias_ih)
        packed = recurrent_scan(self.kind, xproj, self.weight_hh, self.bias_hh, h0, c0)
        shape = (B, H) if batched else (H,)
        h = packed[0, :, :H] if self.kind == "lstm" else packed[0]
        h = h.reshape(*shape)
        if self.kind == "lstm":
            return h, packed[0, :, H:].reshape(*shape)
        return h

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "rnn" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s


class RNNCell(_CellBase):
    """One Elman step ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu).

    ``RNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=float32, seed=None)``;
    parameters ``weight_ih`` ``(H, in)``, ``weight_hh`` ``(H, H)``, ``bias_ih``, ``bias_hh`` ``(H,)``.
    """

    mode = "rnn"


class LSTMCell(_CellBase):
    """One LSTM step, gates ``i, f, g, o``: ``forward(x, (h, c)=None) -> (h', c')``.

    ``LSTMCell(input_size, hidden_size, bias=True, dtype=float32, seed=None)``; parameters
    ``weight_ih`` ``(4H, in)``, ``weight_hh`` ``(4H, H)``, ``bias_ih``, ``bias_hh`` ``(4H,)``.
    """

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = None, seed=None):
        super().__init__(input_size, hidden_size, bias, "tanh", dtype, seed)


class GRUCell(_CellBase):
    """One GRU step, gates ``r, z, n``: ``forward(x, h=None) -> h'``.

    ``GRUCell(input_size, hidden_size, bias=True, dtype=float32, seed=None)``; parameters
    ``weight_ih`` ``(3H, in)``, ``weight_hh`` ``(3H, H)``, ``bias_ih``, ``bias_hh`` ``(3H,)``.
    """

    mode = "gru"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = None, seed=None):
        super().__init__(input_size, hidden_size, bias, "tanh", dtype, seed)
