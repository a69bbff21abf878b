"""RWKV-4 (Peng et al. 2023): a block of time mixing (WKV attention with decay) and channel mixing.

Parameter names, shapes and initialization follow the RWKV-4 training code
(``RWKV-LM/RWKV-v4/src/model.py``): ``att.time_decay`` ``(C,)`` (the per-step
log-decay is ``w = -exp(time_decay)``), ``att.time_first`` ``(C,)`` (the bonus
``u`` of the current token), ``att.time_mix_k/v/r`` ``(1, 1, C)``,
``att.key/value/receptance/output`` (no bias); ``ffn.time_mix_k/r``,
``ffn.key`` ``(4C, C)``, ``ffn.receptance`` ``(C, C)``, ``ffn.value``
``(C, 4C)``; ``ln1``, ``ln2``.

Token shift mixes each position with the previous one
(``x_mix = x * mix + x_prev * (1 - mix)``, ``x_prev`` zero before the first
token). Training runs the WKV in its parallel form
(:func:`ann.wkv.wkv_parallel`); inference with a carried state runs the
recurrent form (:func:`ann.wkv.wkv_recurrent`) one token or one chunk at a
time, with the same results.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype
from neuro.validation import check_int

from ..activations import relu, sigmoid
from ..generator import make_rng
from ..tensor import Tensor, as_tensor, concatenate
from ..wkv import wkv_parallel, wkv_recurrent
from .layers import Embedding, LayerNorm, Linear, Sequential
from .module import Module, Parameter

__all__ = ["RWKVLM", "RWKVBlock", "RWKVChannelMix", "RWKVTimeMix"]


def _param(values, dtype) -> Parameter:
    return Parameter(array_module().asarray(values, dtype=resolve_dtype(dtype, ANN_DTYPE)))


def _ratios(layer_id: int, n_layer: int) -> tuple[float, float]:
    if isinstance(layer_id, bool) or not isinstance(layer_id, (int, np.integer)) or not 0 <= layer_id < n_layer:
        raise ValueError(f"layer_id must be an int in [0, n_layer={n_layer}), got {layer_id!r}")
    ratio_0_to_1 = layer_id / (n_layer - 1) if n_layer > 1 else 0.0
    ratio_1_to_almost0 = 1.0 - layer_id / n_layer
    return ratio_0_to_1, ratio_1_to_almost0


def _shift(x: Tensor, prev) -> Tensor:
    """``x`` ``(B, T, C)`` moved one step later along time; ``prev`` ``(B, C)`` (or zeros) enters at t = 0."""
    first = Tensor(x.xp.zeros((x.shape[0], 1, x.shape[2]), dtype=x.dtype)) if prev is None else as_tensor(prev).reshape(x.shape[0], 1, x.shape[2])
    return concatenate([first, x[:, :-1]], axis=1)


def _mix(x, xx, mix):
    return x * mix + xx * (1.0 - mix)


class RWKVTimeMix(Module):
    """RWKV-4 time mixing: ``output(sigmoid(r) * wkv(w, u, k, v))`` with token-shifted ``k``, ``v``, ``r``.

    Input and output ``(B, T, C)``. ``forward(x, state)`` with ``state =
    (x_last (B, C), wkv_state)`` or None; returns ``(out, new_state)``.
    ``recurrent`` picks the WKV form (forced when ``state`` carries a WKV state).
    """

    def __init__(self, d_model: int, layer_id: int = 0, n_layer: int = 1, dtype: Any = None, seed=None):
        super().__init__()
        rng = make_rng(seed)
        C = check_int(d_model, "d_model")
        r01, r10 = _ratios(layer_id, check_int(n_layer, "n_layer"))
        h = np.arange(C)
        self.time_decay = _param(-5 + 8 * (h / max(C - 1, 1)) ** (0.7 + 1.3 * r01), dtype)
        self.time_first = _param(np.full(C, math.log(0.3)) + 0.5 * ((h + 1) % 3 - 1), dtype)
        ramp = (h / C).reshape(1, 1, C)
        self.time_mix_k = _param(ramp**r10, dtype)
        self.time_mix_v = _param(ramp**r10 + 0.3 * r01, dtype)
        self.time_mix_r = _param(ramp ** (0.5 * r10), dtype)
        self.key = Linear(C, C, bias=False, dtype=dtype, seed=rng)
        self.value = Linear(C, C, bias=False, dtype=dtype, seed=rng)
        self.receptance = Linear(C, C, bias=False, dtype=dtype, seed=rng)
        self.output = Linear(C, C, bias=False, dtype=dtype, seed=rng)

    def forward(self, x, state=None, recurrent: bool = False):
        x = as_tensor(x)
        prev, wkv_state = (None, None) if state is None else state
        xx = _shift(x, prev)
        k = self.key(_mix(x, xx, self.time_mix_k))
        v = self.value(_mix(x, xx, self.time_mix_v))
        r = self.receptance(_mix(x, xx, self.time_mix_r))
        w = -self.time_decay.exp()
        if recurrent or wkv_state is not None:
            wkv, wkv_state = wkv_recurrent(w, self.time_first, k, v, state=wkv_state, return_state=True)
        else:
            wkv, wkv_state = wkv_parallel(w, self.time_first, k, v), None
        return self.output(sigmoid(r) * wkv), (x[:, -1], wkv_state)


class RWKVChannelMix(Module):
    """RWKV-4 channel mixing: ``sigmoid(receptance(x_r)) * value(relu(key(x_k))^2)`` with token shift.

    ``forward(x, prev)`` with ``prev`` the last input ``(B, C)`` of the previous
    chunk (or None); returns ``(out, x_last)``.
    """

    def __init__(self, d_model: int, hidden: int | None = None, layer_id: int = 0, n_layer: int = 1, dtype: Any = None, seed=None):
        super().__init__()
        rng = make_rng(seed)
        C = check_int(d_model, "d_model")
        hidden = 4 * C if hidden is None else check_int(hidden, "hidden")
        _, r10 = _ratios(layer_id, check_int(n_layer, "n_layer"))
        ramp = (np.arange(C) / C).reshape(1, 1, C)
        self.time_mix_k = _param(ramp**r10, dtype)
        self.time_mix_r = _param(ramp**r10, dtype)
        self.key = Linear(C, hidden, bias=False, dtype=dtype, seed=rng)
        self.receptance = Linear(C, C, bias=False, dtype=dtype, seed=rng)
        self.value = Linear(hidden, C, bias=False, dtype=dtype, seed=rng)

    def forward(self, x, prev=None):
        x = as_tensor(x)
        xx = _shift(x, prev)
        k = relu(self.key(_mix(x, xx, self.time_mix_k)))
        kv = self.value(k * k)
        return sigmoid(self.receptance(_mix(x, xx, self.time_mix_r))) * kv, x[:, -1]


class RWKVBlock(Module):
    """One RWKV-4 layer: ``x = x + att(ln1(x)); x = x + ffn(ln2(x))``.

    Parameters
    ----------
    d_model : C.   ffn_hidden : channel-mix width (default ``4 C``).
    layer_id, n_layer : the layer's depth and the model's, used only by the initialization.
    dtype, seed : as for :class:`~ann.nn.Linear`.

    Notes
    -----
    ``forward(x)`` on ``(B, T, C)`` trains with the parallel WKV. Inference
    carries a state: ``forward(x, state, return_state=True)`` (``state`` None
    to start) runs the recurrent WKV and returns ``(out, new_state)``; chunks
    and single tokens (:meth:`step`) continue where the last call stopped, and
    the outputs equal those of one parallel pass over the whole sequence.
    """

    def __init__(self, d_model: int, ffn_hidden: int | None = None, layer_id: int = 0, n_layer: int = 1, dtype: Any = None, seed=None):
        super().__init__()
        rng = make_rng(seed)
        self.d_model = check_int(d_model, "d_model")
        self.ln1 = LayerNorm(d_model, dtype=dtype)
        self.ln2 = LayerNorm(d_model, dtype=dtype)
        self.att = RWKVTimeMix(d_model, layer_id, n_layer, dtype, rng)
        self.ffn = RWKVChannelMix(d_model, ffn_hidden, layer_id, n_layer, dtype, rng)

    def forward(self, x, state=None, return_state: bool = False):
        """``(B, T, C)`` -> ``(B, T, C)`` (and the state ``(att_x, wkv_state, ffn_x)`` if asked)."""
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, d_model={self.d_model}), got shape {x.shape}")
        att_x, wkv_state, ffn_x = (None, None, None) if state is None else state
        a, (att_x, wkv_state) = self.att(self.ln1(x), (att_x, wkv_state), recurrent=return_state)
        x = x + a
        f, ffn_x = self.ffn(self.ln2(x), ffn_x)
        x = x + f
        return (x, (att_x, wkv_state, ffn_x)) if return_state else x

    def step(self, x, state=None):
        """One token ``(B, C)`` -> ``(out (B, C), new_state)`` by the recurrent form."""
        x = as_tensor(x)
        out, state = self.forward(x.reshape(x.shape[0], 1, x.shape[-1]), state, return_state=True)
        return out[:, 0], state


class RWKVLM(Module):
    """An RWKV-4 language model: ``emb``, ``ln0``, ``blocks``, ``ln_out``, ``head`` (RWKV-4's names).

    ``forward(ids)`` maps ``(B, T)`` integer ids to logits ``(B, T, vocab_size)``;
    with ``return_state=True`` (or a ``state``) it runs recurrently and also
    returns the per-block states, for generation one token at a time.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, num_layers: int = 2, ffn_hidden: int | None = None, dtype: Any = None, seed=None):
        super().__init__()
        rng = make_rng(seed)
        self.vocab_size = check_int(vocab_size, "vocab_size")
        n = check_int(num_layers, "num_layers")
        self.emb = Embedding(vocab_size, d_model, dtype=dtype, seed=rng)
        self.ln0 = LayerNorm(d_model, dtype=dtype)
        self.blocks = Sequential(*[RWKVBlock(d_model, ffn_hidden, i, n, dtype, rng) for i in range(n)])
        self.ln_out = LayerNorm(d_model, dtype=dtype)
        self.head = Linear(d_model, vocab_size, bias=False, dtype=dtype, seed=rng)

    def forward(self, ids, state=None, return_state: bool = False):
        ids = ids.data if isinstance(ids, Tensor) else array_module(self.emb.weight.data).asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (B, T) integers, got shape {ids.shape}")
        recurrent = return_state or state is not None
        states = [None] * len(self.blocks) if state is None else list(state)
        x = self.ln0(self.emb(ids))
        for i, block in enumerate(self.blocks):
            if recurrent:
                x, states[i] = block(x, states[i], return_state=True)
            else:
                x = block(x)
        logits = self.head(self.ln_out(x))
        return (logits, states) if recurrent else logits
