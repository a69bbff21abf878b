"""Tiled attention with an online softmax (FlashAttention), on raw arrays.

The forward pass walks key/value tiles for each query tile, keeping a running
row maximum ``m`` and normalizer ``l`` and rescaling the partial output when
the maximum grows (Dao et al. 2022, Algorithm 1; the FlashAttention-2 loop
order). It never holds more than one ``(block_q, block_k)`` score tile per
batch element. It returns the output and the row log-sum-exp
``lse = m + log(l)``; the backward pass recomputes each score tile from
``q``, ``k`` and ``lse`` instead of storing the attention matrix.

Shapes: ``q`` is ``(..., Lq, d)``, ``k`` and ``v`` are ``(..., Lk, d)`` and
``(..., Lk, dv)``; leading axes broadcast as in ``matmul``. ``mask`` is a
boolean array broadcastable to ``(..., Lq, Lk)``, True where a query may
attend (PyTorch's boolean ``attn_mask``). ``causal`` uses PyTorch's
top-left alignment: query ``i`` sees keys ``j <= i``. A query row that sees
no key at all gets output 0 and zero gradients (not NaN).

These functions are the algorithm; :func:`ann.functional.flash_attention`
wraps them as one differentiable op.
"""

from __future__ import annotations

import math

import numpy as np

from neuro.backend import array_module

from .softmax_kernel import online_softmax_tile

__all__ = ["flash_forward", "flash_backward"]


def _tile_mask(xp, mask, causal, q0, q1, k0, k1):
    """Boolean ``(..., q1-q0, k1-k0)`` of allowed pairs for one tile, or None if all are allowed."""
    allowed = None
    if mask is not None:
        rows = slice(q0, q1) if mask.shape[-2] > 1 else slice(None)
        cols = slice(k0, k1) if mask.shape[-1] > 1 else slice(None)
        allowed = mask[..., rows, cols]
    if causal:
        tri = xp.arange(k0, k1)[None, :] <= xp.arange(q0, q1)[:, None]
        allowed = tri if allowed is None else (allowed & tri)
    return allowed


def _tiles(n, block):
    return [(s, min(s + block, n)) for s in range(0, n, block)]


def _skip(causal, q1, k0):
    # with top-left causal alignment a key tile starting after the last query row is fully masked
    return causal and k0 > q1 - 1


def flash_forward(q, k, v, *, mask=None, causal=False, scale=None, block_q=512, block_k=512):
    """Attention output and row log-sum-exp, computed tile by tile.

    Returns ``out`` of shape ``(..., Lq, dv)`` and ``lse`` of shape
    ``(..., Lq)`` (``-inf`` for rows that see no key). Each tile's softmax
    update is the registered kernel ``online_softmax_tile`` (in place on the
    score tile, which is reused from one key tile to the next).
    """
    xp = array_module(q, k, v)
    lq, lk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2], () if mask is None else mask.shape[:-2])
    out = xp.zeros(batch + (lq, v.shape[-1]), dtype=q.dtype)
    lse = xp.full(batch + (lq,), -xp.inf, dtype=q.dtype)
    neg_inf = xp.asarray(-xp.inf, dtype=q.dtype)
    buffers: dict = {}
    for q0, q1 in _tiles(lq, block_q):
        qi = q[..., q0:q1, :] * q.dtype.type(scale)
        m = xp.full(batch + (q1 - q0,), -xp.inf, dtype=q.dtype)
        l = xp.zeros(batch + (q1 - q0,), dtype=q.dtype)
        acc = xp.zeros(batch + (q1 - q0, v.shape[-1]), dtype=q.dtype)
        for k0, k1 in _tiles(lk, block_k):
            if _skip(causal, q1, k0):
                break
            shape = batch + (q1 - q0, k1 - k0)
            if shape not in buffers:
                buffers[shape] = xp.empty(shape, dtype=q.dtype)
            s = xp.matmul(qi, xp.swapaxes(k[..., k0:k1, :], -1, -2), out=buffers[shape])
            allowed = _tile_mask(xp, mask, causal, q0, q1, k0, k1)
            if allowed is not None:
                xp.copyto(s, neg_inf, where=~allowed)
            alpha = online_softmax_tile(s, m, l)  # s -> exp(s - new max); m, l updated
            acc *= alpha[..., None]
            acc += s @ v[..., k0:k1, :]
        seen = l > 0
        out[..., q0:q1, :] = acc / xp.where(seen, l, 1)[..., None]
        lse[..., q0:q1] = xp.where(seen, m + xp.log(xp.where(seen, l, 1)), -xp.inf)
    return out, lse


def flash_backward(q, k, v, out, lse, grad_out, *, mask=None, causal=False, scale=None, block_q=512, block_k=512):
    """Gradients ``(dq, dk, dv)`` of attention, recomputing score tiles from ``lse``.

    ``grad_out`` has the shape of ``out``. Gradients are returned in the
    broadcast batch shape; the caller sums them back to the inputs' shapes.
    """
    xp = array_module(q, k, v, grad_out)
    lq, lk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    batch = out.shape[:-2]
    dq = xp.zeros(batch + q.shape[-2:], dtype=q.dtype)
    dk = xp.zeros(batch + k.shape[-2:], dtype=q.dtype)
    dv = xp.zeros(batch + v.shape[-2:], dtype=q.dtype)
    delta = (grad_out * out).sum(axis=-1, keepdims=True)  # D_i = rowsum(dO * O)
    finite_lse = xp.where(xp.isfinite(lse), lse, xp.inf)[..., None]  # exp(s - inf) = 0 on empty rows
    for k0, k1 in _tiles(lk, block_k):
        kj, vj = k[..., k0:k1, :], v[..., k0:k1, :]
        for q0, q1 in _tiles(lq, block_q):
            if _skip(causal, q1, k0):
                continue
            qi = q[..., q0:q1, :]
            s = (qi @ xp.swapaxes(kj, -1, -2)) * q.dtype.type(scale)
            p = xp.exp(s - finite_lse[..., q0:q1, :])
            allowed = _tile_mask(xp, mask, causal, q0, q1, k0, k1)
            if allowed is not None:
                p = xp.where(allowed, p, 0)
            go = grad_out[..., q0:q1, :]
            dv[..., k0:k1, :] += xp.swapaxes(p, -1, -2) @ go
            dp = go @ xp.swapaxes(vj, -1, -2)
            ds = p * (dp - delta[..., q0:q1, :]) * q.dtype.type(scale)
            dq[..., q0:q1, :] += ds @ kj
            dk[..., k0:k1, :] += xp.swapaxes(ds, -1, -2) @ qi
    return dq, dk, dv
