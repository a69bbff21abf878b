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


def _view(flat, shape):
    """A C-contiguous ``shape`` view of the start of the 1-D buffer ``flat`` (tiles at the edges are smaller)."""
    return flat[:math.prod(shape)].reshape(shape)


def _skip(causal, q1, k0):
    # with top-left causal alignment a key tile starting after the last query row is fully masked
    return causal and k0 > q1 - 1


def flash_forward(q, k, v, *, mask=None, causal=False, scale=None, block_q=512, block_k=512):
    """Attention output and row log-sum-exp, computed tile by tile.

    Returns ``out`` of shape ``(..., Lq, dv)`` and ``lse`` of shape
    ``(..., Lq)`` (``-inf`` for rows that see no key). Each tile's softmax
    update is the registered kernel ``online_softmax_tile`` (in place on the
    score tile). The scaled query tile, the score tile and the product with
    ``v`` live in buffers allocated once per call; the first key tile's
    product is written straight into the output rows.
    """
    xp = array_module(q, k, v)
    lq, lk, d, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    scale = q.dtype.type(1.0 / math.sqrt(d) if scale is None else scale)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2], () if mask is None else mask.shape[:-2])
    out = (xp.empty if lk else xp.zeros)(batch + (lq, dv), dtype=q.dtype)
    lse = xp.empty(batch + (lq,), dtype=q.dtype)
    neg_inf = xp.asarray(-xp.inf, dtype=q.dtype)
    bq, bk, size = min(block_q, lq), min(block_k, lk), math.prod(batch)
    qbuf, sbuf, pvbuf, mbuf, lbuf = (xp.empty(size * n, dtype=q.dtype) for n in (bq * d, bq * bk, bq * dv, bq, bq))
    for q0, q1 in _tiles(lq, block_q):
        rows = q1 - q0
        qi, pv = _view(qbuf, batch + (rows, d)), _view(pvbuf, batch + (rows, dv))
        mi, li, acc = _view(mbuf, batch + (rows,)), _view(lbuf, batch + (rows,)), out[..., q0:q1, :]
        xp.multiply(q[..., q0:q1, :], scale, out=qi)
        mi[...], li[...] = -xp.inf, 0
        for k0, k1 in _tiles(lk, block_k):
            if _skip(causal, q1, k0):
                break
            s = xp.matmul(qi, xp.swapaxes(k[..., k0:k1, :], -1, -2), out=_view(sbuf, batch + (rows, k1 - k0)))
            allowed = _tile_mask(xp, mask, causal, q0, q1, k0, k1)
            if allowed is not None:
                xp.copyto(s, neg_inf, where=~allowed)
            alpha = online_softmax_tile(s, mi, li)  # s -> exp(s - new max); m, l updated
            if k0 == 0:
                xp.matmul(s, v[..., k0:k1, :], out=acc)
            else:
                acc *= alpha[..., None]
                acc += xp.matmul(s, v[..., k0:k1, :], out=pv)
        seen = li > 0
        acc /= xp.where(seen, li, 1)[..., None]
        lse[..., q0:q1] = xp.where(seen, mi + xp.log(xp.where(seen, li, 1)), -xp.inf)
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
