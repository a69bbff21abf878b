"""Pre-norm Transformer blocks, positional encodings and a small causal language model.

:class:`TransformerBlock` uses the parameter names of
``torch.nn.TransformerEncoderLayer`` (``self_attn``, ``linear1``,
``linear2``, ``norm1``, ``norm2``) and computes, as that layer with
``norm_first=True``::

    x = x + dropout(self_attn(norm1(x)))
    x = x + dropout(linear2(dropout(act(linear1(norm2(x))))))

``act`` is any activation of the registry (:func:`ann.activations.get`). For
the gated ones (``glu``, ``swiglu``, ``geglu``, ``reglu``) ``linear1`` maps to
``2 * dim_feedforward`` features and the activation halves them
(``a * act(b)``), so ``linear2`` still reads ``dim_feedforward``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype
from neuro.validation import check_int

from .. import activations, init
from ..generator import make_rng
from ..tensor import Tensor, as_tensor
from .activation import Activation
from .attention import MultiheadAttention
from .layers import Dropout, Embedding, LayerNorm, Linear, RMSNorm
from .module import Module

__all__ = [
    "LearnedPositionalEncoding",
    "SinusoidalPositionalEncoding",
    "TransformerBlock",
    "TransformerLM",
    "feedforward_activation",
    "make_norm",
    "sinusoidal_table",
]


def make_norm(kind: str, dim: int, eps: float = 1e-5, dtype: Any = None) -> Module:
    """``LayerNorm(dim)`` for ``kind="layernorm"``, ``RMSNorm(dim)`` for ``"rmsnorm"``."""
    if kind == "layernorm":
        return LayerNorm(dim, eps=eps, dtype=dtype)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps=eps, dtype=dtype)
    raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {kind!r}")


def feedforward_activation(name: str):
    """``(fn, gated)`` for an FFN activation registry name; ``gated`` if it halves its input."""
    spec = activations.spec(name)
    if spec.kind == "normalizing":
        raise ValueError(f"activation {name!r} normalizes along an axis; use an elementwise or gated activation")
    return activations.get(name), spec.kind == "gated"


class TransformerBlock(Module):
    """A pre-norm Transformer encoder block (self-attention + feed-forward, residual).

    Parameters
    ----------
    d_model : model width E.   nhead : attention heads (must divide E).
    dim_feedforward : FFN hidden width (default ``4 * d_model``).
    activation : FFN activation registry name (``"relu"``, ``"gelu"``, ``"swiglu"``, ...).
    dropout : on attention weights, after each sub-layer and inside the FFN (training only).
    causal : default for ``forward``'s ``is_causal`` (query ``t`` sees positions ``<= t``).
    norm : ``"layernorm"`` (default) or ``"rmsnorm"``.   layer_norm_eps : epsilon of the norms.
    use_flash : attention by :func:`ann.attention.flash_attention` (see :class:`MultiheadAttention`).
    bias, dtype, seed : as for :class:`~ann.nn.Linear`.

    Notes
    -----
    Input and output ``(B, T, E)``.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int | None = None,
        activation: str = "gelu",
        dropout: float = 0.0,
        causal: bool = False,
        norm: str = "layernorm",
        layer_norm_eps: float = 1e-5,
        use_flash: bool = False,
        bias: bool = True,
        dtype: Any = None,
        seed=None,
    ):
        super().__init__()
        rng = make_rng(seed)
        d_model = check_int(d_model, "d_model")
        dim_feedforward = 4 * d_model if dim_feedforward is None else dim_feedforward
        self.d_model = d_model
        self.causal = bool(causal)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=True, use_flash=use_flash, dtype=dtype, seed=rng)
        _, self.gated = feedforward_activation(activation)
        self.act = Activation(activation)  # a child module, so hooks and relufy reach it as "act"
        hidden = check_int(dim_feedforward, "dim_feedforward")
        self.linear1 = Linear(d_model, 2 * hidden if self.gated else hidden, bias=bias, dtype=dtype, seed=rng)
        self.dropout = Dropout(dropout, seed=rng)
        self.linear2 = Linear(hidden, d_model, bias=bias, dtype=dtype, seed=rng)
        self.norm1 = make_norm(norm, d_model, layer_norm_eps, dtype)
        self.norm2 = make_norm(norm, d_model, layer_norm_eps, dtype)
        self.dropout1 = Dropout(dropout, seed=rng)
        self.dropout2 = Dropout(dropout, seed=rng)

    @property
    def activation(self) -> str:
        """The registry name of the FFN activation (follows ``act`` when it is replaced)."""
        return getattr(self.act, "name", type(self.act).__name__)

    def forward(self, x, attn_mask=None, key_padding_mask=None, is_causal: bool | None = None):
        """``(B, T, E)`` -> ``(B, T, E)``; masks as :meth:`MultiheadAttention.forward`."""
        causal = self.causal if is_causal is None else bool(is_causal)
        h = self.norm1(x)
        a, _ = self.self_attn(h, h, h, key_padding_mask=key_padding_mask, need_weights=False, attn_mask=attn_mask, is_causal=causal)
        x = x + self.dropout1(a)
        return x + self.dropout2(self.feedforward(self.norm2(x)))

    def feedforward(self, x):
        """``linear2(dropout(act(linear1(x))))`` on ``(..., d_model)``."""
        return self.linear2(self.dropout(self.act(self.linear1(x))))


def sinusoidal_table(length: int, d_model: int, dtype: Any = ANN_DTYPE, xp=np):
    """The ``(length, d_model)`` table of Vaswani et al.: ``sin(p / 10000^(2i/d))`` in even, ``cos`` in odd columns."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2, dtype=np.float64) / d_model)
    table = np.zeros((length, d_model))
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq[: d_model // 2])
    return xp.asarray(table, dtype=dtype)


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal table to ``x`` ``(B, T, d_model)`` (no parameters); ``offset`` shifts positions."""

    def __init__(self, d_model: int, dtype: Any = None):
        super().__init__()
        self.d_model = check_int(d_model, "d_model")
        self.dtype = resolve_dtype(dtype, ANN_DTYPE)
        self._table = None

    def table(self, length: int, xp=np):
        if self._table is None or self._table.shape[0] < length or array_module(self._table) is not xp:
            self._table = sinusoidal_table(max(length, 64), self.d_model, self.dtype, xp)
        return self._table[:length]

    def forward(self, x, offset: int = 0):
        x = as_tensor(x)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must end with d_model={self.d_model} features, got shape {x.shape}")
        t = x.shape[-2]
        return x + self.table(offset + t, x.xp)[offset:].astype(x.dtype, copy=False)


class LearnedPositionalEncoding(Module):
    """Adds a learned ``weight`` ``(max_len, d_model)`` row per position (initialized ``N(0, 0.02^2)``)."""

    def __init__(self, max_len: int, d_model: int, dtype: Any = None, seed=None):
        super().__init__()
        self.max_len = check_int(max_len, "max_len")
        self.embedding = Embedding(self.max_len, d_model, dtype=dtype, seed=seed)
        init.normal_(self.embedding.weight, 0.0, 0.02, seed=seed)

    def forward(self, x, offset: int = 0):
        x = as_tensor(x)
        t = x.shape[-2]
        if offset + t > self.max_len:
            raise ValueError(f"sequence of length {t} at offset {offset} exceeds max_len={self.max_len}")
        return x + self.embedding.weight[offset : offset + t]


class TransformerLM(Module):
    """A causal Transformer language model: token embedding, positions, pre-norm blocks, final norm, head.

    ``forward(ids)`` maps integer ids ``(B, T)`` to next-token logits ``(B, T, vocab_size)``.

    Parameters
    ----------
    vocab_size, d_model, nhead, num_layers, dim_feedforward (default ``4*d_model``).
    max_len : the longest sequence (size of the learned position table).
    positional : ``"learned"`` or ``"sinusoidal"``.
    activation, dropout, norm, use_flash : passed to every :class:`TransformerBlock`.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int | None = None,
        max_len: int = 512,
        positional: str = "learned",
        activation: str = "gelu",
        dropout: float = 0.0,
        norm: str = "layernorm",
        use_flash: bool = False,
        dtype: Any = None,
        seed=None,
    ):
        super().__init__()
        rng = make_rng(seed)
        self.vocab_size = check_int(vocab_size, "vocab_size")
        self.d_model = check_int(d_model, "d_model")
        self.max_len = check_int(max_len, "max_len")
        self.embedding = Embedding(vocab_size, d_model, dtype=dtype, seed=rng)
        if positional == "learned":
            self.pos = LearnedPositionalEncoding(max_len, d_model, dtype=dtype, seed=rng)
        elif positional == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(d_model, dtype=dtype)
        else:
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {positional!r}")
        self.drop = Dropout(dropout, seed=rng)
        for i in range(check_int(num_layers, "num_layers")):
            block = TransformerBlock(d_model, nhead, dim_feedforward, activation, dropout, True, norm, use_flash=use_flash, dtype=dtype, seed=rng)
            self.add_module(f"block{i}", block)
        self.num_layers = num_layers
        self.norm = make_norm(norm, d_model, 1e-5, dtype)
        self.head = Linear(d_model, vocab_size, dtype=dtype, seed=rng)

    def blocks(self) -> list:
        return [getattr(self, f"block{i}") for i in range(self.num_layers)]

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else array_module(self.embedding.weight.data).asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (B, T) integers, got shape {ids.shape}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds max_len={self.max_len}")
        x = self.drop(self.pos(self.embedding(ids)))
        for block in self.blocks():
            x = block(x, is_causal=True)
        return self.head(self.norm(x))
