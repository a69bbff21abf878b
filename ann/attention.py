"""Scaled dot-product attention: the naive form and the tiled FlashAttention form.

Shapes as in PyTorch: ``q`` is ``(..., Lq, d)``, ``k`` is ``(..., Lk, d)``,
``v`` is ``(..., Lk, dv)``; the output is ``(..., Lq, dv)``. ``mask`` is a
boolean array broadcastable to ``(..., Lq, Lk)``, True where attending is
allowed; ``causal`` lets query ``i`` see keys ``j <= i``. A query that sees
no key outputs 0 (not NaN), in both forms.
"""

from __future__ import annotations

import math

import numpy as np

from neuro.validation import check_int

from .activations import softmax
from .flash import flash_backward, flash_forward
from .generator import make_rng
from .tensor import Tensor, as_tensor, make_op, where

__all__ = ["scaled_dot_product_attention", "flash_attention"]


def _check(q: Tensor, k: Tensor, v: Tensor, mask) -> None:
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"q, k and v need at least 2 dimensions (..., L, d); got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the feature size d; got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length Lk; got {k.shape[-2]} and {v.shape[-2]}")
    if mask is not None and getattr(mask, "dtype", None) != np.bool_:
        raise TypeError(f"mask must be a boolean array (True = attend), got {getattr(mask, 'dtype', type(mask).__name__)}")


def _alias(value, alias, name: str, alias_name: str):
    """``value`` or its older keyword ``alias`` (not both)."""
    if alias is None:
        return value
    if value is not None:
        raise TypeError(f"give {name} or {alias_name}, not both")
    return alias


def _allowed(xp, mask, causal: bool, lq: int, lk: int):
    allowed = None if mask is None else xp.asarray(mask)
    if causal:
        tri = xp.tril(xp.ones((lq, lk), dtype=bool))
        allowed = tri if allowed is None else (allowed & tri)
    return allowed


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                                 *, scale=None, seed=None, mask=None, causal: bool | None = None) -> Tensor:
    """``softmax(q k^T * scale + masking) v``, materializing the ``(Lq, Lk)`` scores.

    PyTorch's signature and argument order: ``attn_mask`` a boolean array (True = attend;
    deliberate difference: a floating additive mask is not accepted here), ``dropout_p`` drops
    attention weights (inverted dropout, drawn from ``seed``), ``is_causal`` lets query ``i`` see
    keys ``j <= i``, ``scale`` (keyword-only, as PyTorch) defaults to ``1/sqrt(d)``. ``mask`` and ``causal`` are this module's
    older names for ``attn_mask`` and ``is_causal`` (keyword-only aliases).
    """
    mask = _alias(attn_mask, mask, "attn_mask", "mask")
    causal = bool(_alias(is_causal or None, causal, "is_causal", "causal"))
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    _check(q, k, v, mask)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    xp = q.xp
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.swapaxes(-1, -2)) * scale
    allowed = _allowed(xp, mask, causal, q.shape[-2], k.shape[-2])
    if allowed is not None:
        seen = allowed.any(axis=-1, keepdims=True)  # rows with at least one visible key
        scores = where(allowed, scores, -np.inf)
        scores = where(seen, scores, 0.0)  # keep empty rows finite; they are zeroed below
    weights = softmax(scores, axis=-1)
    if allowed is not None:
        weights = weights * seen.astype(weights.dtype)
    if dropout_p > 0.0:
        keep = make_rng(seed).random(weights.shape) >= dropout_p
        weights = weights * (xp.asarray(keep, dtype=weights.dtype) / (1.0 - dropout_p))
    return weights @ v


def flash_attention(q, k, v, mask=None, causal: bool = False, block_q: int = 512, block_k: int = 512, scale=None) -> Tensor:
    """Attention by the tiled online-softmax algorithm (:mod:`ann.flash`); equal to
    :func:`scaled_dot_product_attention` without dropout.

    Memory beyond the inputs and output is one ``(block_q, block_k)`` tile
    per batch element plus the ``(..., Lq)`` log-sum-exp saved for the
    backward pass, which recomputes the tiles instead of storing the
    ``(Lq, Lk)`` attention matrix.
    """
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    _check(q, k, v, mask)
    for name, block in (("block_q", block_q), ("block_k", block_k)):
        check_int(block, name)
    opts = dict(mask=mask, causal=causal, scale=scale, block_q=block_q, block_k=block_k)
    out, lse = flash_forward(q.data, k.data, v.data, **opts)

    def backward(g):
        return flash_backward(q.data, k.data, v.data, out, lse, g, **opts)

    return make_op(out, (q, k, v), backward, op="flash_attention")
