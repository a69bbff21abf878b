"""Stateless functions in the spirit of ``torch.nn.functional``.

Layers (:func:`linear`, :func:`dropout`, :func:`embedding`, :func:`layer_norm`,
:func:`rms_norm`) plus every activation of :mod:`ann.activations` and every
loss of :mod:`ann.losses`, re-exported so that ``import ann.functional as F``
reads like PyTorch code.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import activations as _act
from . import losses as _losses
from .activations import *  # noqa: F401,F403  (re-export)
from .attention import flash_attention, scaled_dot_product_attention
from .generator import make_rng
from .losses import *  # noqa: F401,F403  (re-export)
from .norm_kernel import layer_norm_arrays, layer_norm_backward_arrays
from .recurrence import linear_recurrence
from .ssm import s4d_discretize, s4d_scan, selective_scan
from .wkv import wkv_parallel, wkv_recurrent
from .tensor import Tensor, _operand, _xp, make_op, where
from .warnings import AnnWarning

__all__ = ["linear", "dropout", "embedding", "layer_norm", "rms_norm"] + [
    "scaled_dot_product_attention", "flash_attention", "linear_recurrence",
    "selective_scan", "s4d_discretize", "s4d_scan", "wkv_recurrent", "wkv_parallel",
] + [
    n for n in _act.__all__ if n not in ("ActivationSpec", "get", "names", "spec", "register", "SELU_ALPHA", "SELU_SCALE")
] + list(_losses.__all__)


def linear(x, weight, bias=None) -> Tensor:
    """``x @ weight.T + bias``: ``x`` ``(..., in)``, ``weight`` ``(out, in)``, ``bias`` ``(out,)`` -> ``(..., out)``.

    One fused primitive (one GEMM forward, two backward) so that the MLP hot path
    allocates no intermediate graph nodes.
    """
    x = _operand(x)
    weight = _operand(weight, x)
    if weight.ndim != 2:
        raise ValueError(f"linear weight must have shape (out, in), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear shape mismatch: x has shape {x.shape} but weight has shape {weight.shape}; "
            f"x.shape[-1] must equal weight.shape[1] ({weight.shape[1]})"
        )
    w = weight.data
    x2 = x.data.reshape(-1, w.shape[1]) if x.ndim != 2 else x.data
    out = x2 @ w.T
    parents = (x, weight)
    if bias is not None:
        bias = _operand(bias, x)
        if bias.shape != (w.shape[0],):
            raise ValueError(f"linear bias must have shape ({w.shape[0]},), got {bias.shape}")
        out += bias.data
        parents = (x, weight, bias)
    out_shape = x.shape[:-1] + (w.shape[0],)

    def backward(g):
        g2 = g.reshape(-1, w.shape[0]) if g.ndim != 2 else g
        gx = (g2 @ w).reshape(x.shape) if x.requires_grad else None
        gw = g2.T @ x2 if weight.requires_grad else None
        if bias is None:
            return gx, gw
        gb = g2.sum(axis=0) if bias.requires_grad else None
        return gx, gw, gb

    return make_op(out.reshape(out_shape) if x.ndim != 2 else out, parents, backward, "linear")


def dropout(x, p: float = 0.5, training: bool = True, seed=None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    Identity when ``training`` is False or ``p == 0``. ``seed``: int or Generator.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
    x = _operand(x)
    if not training or p == 0.0:
        return x
    xp = _xp(x.data)
    if p == 1.0:
        warnings.warn("dropout with p=1 zeroes every element", AnnWarning, stacklevel=2)
        return x * 0.0
    rng = make_rng(seed)
    keep = rng.random(x.shape) >= p
    mask = xp.asarray(keep, dtype=x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor(mask)


def embedding(indices, weight, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` ``(num, dim)`` picked by integer ``indices`` (any shape) -> ``indices.shape + (dim,)``.

    ``padding_idx`` (as PyTorch; negative counts from the end): positions holding
    it read that row but send it no gradient.
    """
    weight = _operand(weight)
    num = weight.shape[0]
    idx = indices.data if isinstance(indices, Tensor) else _xp(weight.data).asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding indices must be integers, got dtype {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        raise ValueError(f"embedding indices must be in [0, {num - 1}], got range [{int(idx.min())}, {int(idx.max())}]")
    rows = weight[idx]
    if padding_idx is None:
        return rows
    padding_idx = _padding_row(padding_idx, num)
    return where((idx != padding_idx)[..., None], rows, rows.detach())


def _padding_row(padding_idx, num_embeddings: int) -> int:
    """``padding_idx`` in ``[-num_embeddings, num_embeddings)`` as a row index; ``ValueError`` otherwise."""
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"padding_idx must be an int or None, got {type(padding_idx).__name__}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"padding_idx must be in [{-num_embeddings}, {num_embeddings - 1}], got {padding_idx}")
    return int(padding_idx) % num_embeddings


def _norm_axes(x: Tensor, normalized_shape) -> tuple:
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if x.shape[x.ndim - k:] != normalized_shape:
        raise ValueError(f"input shape {x.shape} does not end with normalized_shape {normalized_shape}")
    return tuple(range(x.ndim - k, x.ndim))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the trailing ``normalized_shape`` axes (biased variance).

    One primitive with a hand-written backward (``dx = rstd (gw - mean(gw) - xhat mean(gw xhat))``,
    ``gw = g * weight``): the registered kernels ``layer_norm`` / ``layer_norm_backward``
    (:mod:`ann.norm_kernel`; compiled for float32 on the CPU).
    """
    x = _operand(x)
    n_axes = len(_norm_axes(x, normalized_shape))
    w = None if weight is None else _operand(weight, x)
    b = None if bias is None else _operand(bias, x)
    out, xhat, rstd = layer_norm_arrays(x.data, None if w is None else w.data, None if b is None else b.data, eps, n_axes)

    def backward(g):
        dx, dw, db = layer_norm_backward_arrays(g, xhat, rstd, None if w is None else w.data, n_axes)
        return dx, dw, db

    parents = (x, w if w is not None else Tensor(0.0), b if b is not None else Tensor(0.0))
    return make_op(out, parents, backward, "layer_norm")


def rms_norm(x, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing axes; ``eps=None`` is the dtype's machine epsilon (as PyTorch)."""
    x = _operand(x)
    axes = _norm_axes(x, normalized_shape)
    if eps is None:
        eps = float(np.finfo(x.dtype).eps)
    y = x / ((x * x).mean(axis=axes, keepdims=True) + eps) ** 0.5
    if weight is not None:
        y = y * weight
    return y
