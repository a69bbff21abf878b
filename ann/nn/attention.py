"""Multi-head attention with PyTorch's parameter layout and mask conventions.

:class:`MultiheadAttention` holds the same parameters under the same names
as ``torch.nn.MultiheadAttention`` (``in_proj_weight`` ``(3E, E)``,
``in_proj_bias`` ``(3E,)``, ``out_proj.weight`` ``(E, E)``,
``out_proj.bias`` ``(E,)``; or ``q_proj_weight``/``k_proj_weight``/
``v_proj_weight`` when ``kdim``/``vdim`` differ from ``embed_dim``), so a
PyTorch state dict converted to NumPy loads directly.

Masks follow PyTorch's ``MultiheadAttention`` (the opposite sense of
:func:`ann.attention.scaled_dot_product_attention`): a boolean
``attn_mask`` or ``key_padding_mask`` is True where attending is NOT
allowed; a floating mask is added to the scores (``-inf`` forbids). A
query that may see no key at all outputs 0 (PyTorch gives NaN there).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype
from neuro.validation import check_int

from .. import functional as F
from .. import init
from ..activations import softmax, softmax_backward_array, softmax_last_
from ..attention import flash_attention
from ..generator import make_rng
from ..tensor import Tensor, as_tensor, make_op, where
from .layers import Linear
from .module import Module, Parameter

__all__ = ["MultiheadAttention"]



def _param(shape, dtype) -> Parameter:
    return Parameter(array_module().zeros(shape, dtype=resolve_dtype(dtype, ANN_DTYPE)))


def _mask_array(mask, name: str, xp):
    data = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if data.dtype != np.bool_ and data.dtype.kind != "f":
        raise TypeError(f"{name} must be a boolean or floating array, got dtype {data.dtype}")
    return data


def combine_masks(batch: int, heads: int, lq: int, lk: int, attn_mask=None, key_padding_mask=None, is_causal=False, xp=np, dtype=ANN_DTYPE):
    """Turn PyTorch-style masks into ``(allowed, additive)`` for scores of shape ``(B, H, Lq, Lk)``.

    ``attn_mask``: ``(Lq, Lk)`` or ``(B*H, Lq, Lk)``; ``key_padding_mask``:
    ``(B, Lk)``. Boolean entries are True where attending is forbidden;
    floating entries are added to the scores, and their ``-inf`` entries are
    folded into the boolean part. Returns ``allowed`` (bool, broadcastable to
    ``(B, H, Lq, Lk)``, True = may attend, or None) and ``additive`` (float
    array of that broadcast shape, or None).
    """
    allowed = None
    additive = None

    def add(bool_forbid=None, extra=None):
        nonlocal allowed, additive
        if bool_forbid is not None:
            ok = ~bool_forbid
            allowed = ok if allowed is None else (allowed & ok)
        if extra is not None:
            finite = xp.isfinite(extra)
            if not bool(finite.all()):
                add(bool_forbid=~finite)
                extra = xp.where(finite, extra, 0)
            extra = extra.astype(dtype, copy=False)
            additive = extra if additive is None else additive + extra

    if attn_mask is not None:
        m = _mask_array(attn_mask, "attn_mask", xp)
        if m.shape == (lq, lk):
            m = m.reshape(1, 1, lq, lk)
        elif m.shape == (batch * heads, lq, lk):
            m = m.reshape(batch, heads, lq, lk)
        else:
            raise ValueError(f"attn_mask must have shape (L, S) = {(lq, lk)} or (B*num_heads, L, S) = {(batch * heads, lq, lk)}, got {m.shape}")
        add(m, None) if m.dtype == np.bool_ else add(None, m)
    if key_padding_mask is not None:
        m = _mask_array(key_padding_mask, "key_padding_mask", xp)
        if m.shape != (batch, lk):
            raise ValueError(f"key_padding_mask must have shape (B, S) = {(batch, lk)}, got {m.shape}")
        m = m.reshape(batch, 1, 1, lk)
        add(m, None) if m.dtype == np.bool_ else add(None, m)
    if is_causal:
        add(~xp.tril(xp.ones((lq, lk), dtype=bool)), None)
    return allowed, additive


def packed_self_attention(proj: Tensor, num_heads: int, allowed=None, additive=None) -> Tensor:
    """Attention of the packed projections ``proj`` ``(B, L, 3E)`` (``[q | k | v]``, heads of ``E / num_heads``
    features in order) -> the context ``(B, L, E)``, heads merged.

    The same arithmetic as the naive form of :meth:`MultiheadAttention.forward` (``(q / sqrt(d_head)) k^T``,
    masks, softmax, ``weights v``) as one primitive: ``q``, ``k``, ``v`` are read and their gradients
    written as strided views of ``proj``'s layout (BLAS takes them as they are), so no head is split or
    merged by a copy, and the scores are turned into weights in place. ``allowed`` / ``additive``: as
    returned by :func:`combine_masks` (broadcastable to ``(B, H, L, L)``).
    """
    B, L, E3 = proj.shape
    E = E3 // 3
    d = E // num_heads
    xp = array_module(proj.data)
    scale = proj.dtype.type(1.0 / math.sqrt(d))
    q, k, v = _head_views(proj.data, num_heads)
    qs = q * scale
    scores = xp.matmul(qs, k.swapaxes(-1, -2))  # (B, H, L, L), a new array: masked and normalized in place
    seen = None
    if additive is not None:
        scores += additive
    if allowed is not None:
        seen = allowed.any(axis=-1, keepdims=True)
        xp.copyto(scores, -np.inf, where=~allowed)
        xp.copyto(scores, 0.0, where=~seen)
    weights = softmax_last_(scores)
    if seen is not None:
        weights *= seen.astype(weights.dtype)
    ctx = xp.empty((B, L, num_heads, d), proj.dtype)
    xp.matmul(weights, v, out=ctx.transpose(0, 2, 1, 3))

    def backward(g):
        gc = g.reshape(B, L, num_heads, d).transpose(0, 2, 1, 3)
        gw = xp.matmul(gc, v.swapaxes(-1, -2))
        if seen is not None:
            gw *= seen.astype(gw.dtype)
        gs = softmax_backward_array(weights, gw)
        if allowed is not None:
            xp.copyto(gs, 0.0, where=~(allowed & seen))  # as the where() of the general form (matters for NaN g)
        grad = xp.empty((B, L, 3 * E), proj.dtype)
        gq, gk, gv = _head_views(grad, num_heads)
        xp.matmul(gs, k, out=gq)
        gq *= scale
        xp.matmul(gs.swapaxes(-1, -2), qs, out=gk)
        xp.matmul(weights.swapaxes(-1, -2), gc, out=gv)
        return (grad,)

    return make_op(ctx.reshape(B, L, E), (proj,), backward, "packed_self_attention")


def _head_views(packed, num_heads: int) -> tuple:
    """``(B, L, 3E)`` -> three ``(B, H, L, d_head)`` views (q, k, v), no copy."""
    B, L, E3 = packed.shape
    p = packed.reshape(B, L, 3, num_heads, E3 // (3 * num_heads))
    return tuple(p[:, :, i].transpose(0, 2, 1, 3) for i in range(3))


class MultiheadAttention(Module):
    """Multi-head attention ``softmax(Q K^T / sqrt(d_head) + mask) V`` over ``num_heads`` heads.

    Parameters
    ----------
    embed_dim : E, the model width; ``num_heads`` must divide it (``d_head = E / num_heads``).
    num_heads : number of heads H.
    dropout : dropout probability on the attention weights while training.
    bias : whether the input and output projections have biases.
    add_bias_kv, add_zero_attn : PyTorch's options, in PyTorch's argument order; only False
        (their default) is supported (``NotImplementedError`` otherwise).
    kdim, vdim : feature sizes of ``key`` and ``value`` (default E); when they
        differ from E the projections are ``q_proj_weight``, ``k_proj_weight``,
        ``v_proj_weight`` (as PyTorch) instead of ``in_proj_weight``.
    batch_first : inputs are ``(B, L, E)`` if True, ``(L, B, E)`` (sequence-first) if False
        (the default, as PyTorch).
    use_flash : compute attention with :func:`ann.attention.flash_attention`
        (tiled, never materializing ``(L, S)``) when no weights are asked for,
        no floating mask is given and no dropout is active; otherwise the
        naive form runs.
    block_q, block_k : tile sizes for the flash form.
    dtype, seed : parameter dtype (float32 default) and the seed of the
        initialization and of the dropout stream.

    Notes
    -----
    Initialization as PyTorch: ``in_proj_weight`` Xavier-uniform, biases zero,
    ``out_proj.weight`` as :class:`~ann.nn.Linear`. Self-attention (``key`` and ``value``
    omitted or the ``query`` tensor itself) with ``need_weights=False``, no active dropout
    and ``use_flash`` off runs as one primitive, :func:`packed_self_attention` (same
    arithmetic, fewer passes and copies).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        use_flash: bool = False,
        block_q: int = 128,
        block_k: int = 128,
        dtype: Any = None,
        seed=None,
    ):
        super().__init__()
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("add_bias_kv and add_zero_attn are not supported (PyTorch's options, kept in its argument order)")
        self.embed_dim = check_int(embed_dim, "embed_dim")
        self.num_heads = check_int(num_heads, "num_heads")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide embed_dim ({embed_dim})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.head_dim = self.embed_dim // self.num_heads
        self.kdim = self.embed_dim if kdim is None else check_int(kdim, "kdim")
        self.vdim = self.embed_dim if vdim is None else check_int(vdim, "vdim")
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.use_flash = bool(use_flash)
        self.block_q = check_int(block_q, "block_q")
        self.block_k = check_int(block_k, "block_k")
        rng = make_rng(seed)
        self._same_dims = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        E = self.embed_dim
        if self._same_dims:
            self.in_proj_weight = init.xavier_uniform_(_param((3 * E, E), dtype), seed=rng)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = init.xavier_uniform_(_param((E, E), dtype), seed=rng)
            self.k_proj_weight = init.xavier_uniform_(_param((E, self.kdim), dtype), seed=rng)
            self.v_proj_weight = init.xavier_uniform_(_param((E, self.vdim), dtype), seed=rng)
        if bias:
            self.in_proj_bias = _param((3 * E,), dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype, seed=rng)
        if bias:
            init.zeros_(self.out_proj.bias)
        self.rng = rng

    # ------------------------------------------------------------ helpers
    def _projection_weights(self):
        E = self.embed_dim
        if self._same_dims:
            w = self.in_proj_weight
            ws = (w[:E], w[E : 2 * E], w[2 * E :])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        if self.in_proj_bias is None:
            return ws, (None, None, None)
        b = self.in_proj_bias
        return ws, (b[:E], b[E : 2 * E], b[2 * E :])

    def _heads(self, x: Tensor, batch: int, length: int) -> Tensor:
        """``(B, L, E)`` -> ``(B, H, L, d_head)``."""
        return x.reshape(batch, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    # ------------------------------------------------------------ forward
    def forward(
        self,
        query,
        key=None,
        value=None,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        """Attend from ``query`` to ``key``/``value`` (self-attention when they are omitted).

        Shapes (with ``batch_first=True``; sequence-first ``(L, B, E)`` etc. by default):
        ``query`` ``(B, L, E)``, ``key`` ``(B, S, kdim)``, ``value`` ``(B, S, vdim)``; unbatched ``(L, E)`` inputs work too.
        ``attn_mask`` ``(L, S)`` or ``(B*H, L, S)``, ``key_padding_mask`` ``(B, S)``
        (boolean True = forbidden, or floating additive). ``is_causal`` adds the
        causal mask (query ``i`` sees keys ``j <= i``).

        Returns ``(output, weights)``: output ``(B, L, E)``; weights ``(B, L, S)``
        averaged over heads (``(B, H, L, S)`` if not ``average_attn_weights``),
        or None when ``need_weights`` is False.
        """
        query = as_tensor(query)
        key = query if key is None else as_tensor(key)
        value = key if value is None else as_tensor(value)
        self_attending = key is query and value is query
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"query, key and value must all be 3-D (batched) or 2-D (unbatched); got {query.shape}, {key.shape}, {value.shape}")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (t.reshape((1,) + t.shape) for t in (query, key, value))
            if self_attending:
                key = value = query
            if key_padding_mask is not None:
                key_padding_mask = array_module(query.data).asarray(getattr(key_padding_mask, "data", key_padding_mask)).reshape(1, -1)
        elif not self.batch_first:
            query, key, value = (t.swapaxes(0, 1) for t in (query, key, value))
            if self_attending:
                key = value = query
        batch, lq, E = query.shape
        lk = key.shape[1]
        if E != self.embed_dim:
            raise ValueError(f"query must have {self.embed_dim} features, got {E}")
        if key.shape[2] != self.kdim or value.shape[2] != self.vdim:
            raise ValueError(f"key and value must have {self.kdim} and {self.vdim} features, got {key.shape[2]} and {value.shape[2]}")
        if value.shape[:2] != key.shape[:2] or key.shape[0] != batch:
            raise ValueError(f"key and value must be (B, S, .) with B={batch} and the same S; got {key.shape} and {value.shape}")

        drop = self.dropout if self.training else 0.0
        xp = array_module(query.data)
        if self._packs(self_attending, need_weights, drop):
            allowed, additive = combine_masks(batch, self.num_heads, lq, lk, attn_mask, key_padding_mask, is_causal, xp, query.dtype)
            proj = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # one GEMM for q, k and v
            return self._finish(packed_self_attention(proj, self.num_heads, allowed, additive), unbatched), None
        (wq, wk, wv), (bq, bk, bv) = self._projection_weights()
        q = self._heads(F.linear(query, wq, bq), batch, lq)
        k = self._heads(F.linear(key, wk, bk), batch, lk)
        v = self._heads(F.linear(value, wv, bv), batch, lk)
        allowed, additive = combine_masks(batch, self.num_heads, lq, lk, attn_mask, key_padding_mask, is_causal, xp, q.dtype)

        weights = None
        if self.use_flash and not need_weights and additive is None and drop == 0.0:
            ctx = flash_attention(q, k, v, mask=allowed, block_q=self.block_q, block_k=self.block_k)
        else:
            scores = (q * q.dtype.type(1.0 / math.sqrt(self.head_dim))) @ k.swapaxes(-1, -2)  # (B, H, L, S)
            if additive is not None:
                scores = scores + additive
            seen = None
            if allowed is not None:
                seen = allowed.any(axis=-1, keepdims=True)
                scores = where(allowed, scores, -np.inf)
                scores = where(seen, scores, 0.0)
            weights = softmax(scores, axis=-1)
            if seen is not None:
                weights = weights * seen.astype(weights.dtype)
            if drop > 0.0:
                weights = F.dropout(weights, drop, True, seed=self.rng)
            ctx = weights @ v
        out = self._finish(ctx.transpose(0, 2, 1, 3).reshape(batch, lq, E), unbatched)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(axis=1)
        if unbatched:
            weights = weights.reshape(weights.shape[1:])
        return out, weights

    def _packs(self, self_attending: bool, need_weights: bool, drop: float) -> bool:
        """Whether the packed form applies: self-attention (``key`` and ``value`` are ``query``) through
        ``in_proj_weight``, no weights asked for, no dropout, not the flash form (else the general path)."""
        return self_attending and self._same_dims and not need_weights and drop == 0.0 and not self.use_flash

    def _finish(self, ctx, unbatched: bool):
        """``out_proj`` of the merged context ``(B, L, E)``, in the input's layout."""
        out = self.out_proj(ctx)
        if unbatched:
            return out.reshape(out.shape[1:])
        return out if self.batch_first else out.swapaxes(0, 1)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, batch_first={self.batch_first}, use_flash={self.use_flash}"
