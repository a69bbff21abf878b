"""Sparse-input matrix product: ``h @ W_t`` reading only the rows of ``W_t`` where ``h`` is nonzero.

For a ReLU layer's output ``h`` (mostly exact zeros) and the next layer's
transposed weight ``W_t`` ``(F, D)``, ``h @ W_t = h[idx] @ W_t[idx]`` with
``idx`` the active (nonzero) entries. A single token's product is bound by
reading ``W_t`` from memory, so skipping the inactive rows saves time almost
in proportion to the sparsity.

Implementations (see :mod:`neuro.kernels.registry`):

* reference: NumPy/CuPy ``flatnonzero`` + gather + ``@`` (works on both);
* cpu: numba; one compiled call finds the active indices and adds four
  active rows of ``W_t`` (contiguous ``D``-vectors) at a time into the
  output row, which stays in L1 (``fastmath`` lets the inner loop
  vectorize). Above :data:`SERIAL_WORK` multiply-adds the active rows are
  split among threads with per-thread partial sums (a split over output
  columns reads each row in pieces and was 3x slower per thread);
* cuda: ``gather_matmul.cu``, one thread per output column and batch row,
  the active rows shared among blocks (atomic adds, so the summation order
  varies between runs).

For a batch ``h`` ``(B, F)`` the rows read are the union of the rows' active
entries. Differences from the dense product: a row of ``W_t`` holding NaN or
inf is skipped where ``h`` is zero (dense gives NaN), and the summation order
differs (results agree to rounding).
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from ..backend import array_module
from .registry import call, register

__all__ = ["gather_matmul", "active_indices"]

#: Below this many multiply-adds (64M: for F=4096, D=1024, up to 16 fully dense tokens) the CPU path runs
#: on one thread. These products are memory-bound: a second thread gained <25% on an idle machine, and
#: numba's OpenMP threads were 30-100x slower when other jobs shared the 2 cores.
SERIAL_WORK = 1 << 26


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check(h, w_t):
    xp = np if type(h) is np.ndarray and type(w_t) is np.ndarray else array_module(h, w_t)
    for name, a in (("h", h), ("W_t", w_t)):
        if not isinstance(a, xp.ndarray):
            raise TypeError(f"{name} must be a numpy or cupy ndarray, got {type(a).__name__}")
        if a.dtype not in _FLOATS:
            raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    if h.dtype != w_t.dtype:
        raise TypeError(f"h and W_t must have the same dtype, got {h.dtype} and {w_t.dtype}")
    if w_t.ndim != 2:
        raise ValueError(f"W_t must have shape (F, D), got {w_t.shape}")
    if h.ndim not in (1, 2) or h.shape[-1] != w_t.shape[0]:
        raise ValueError(f"h must have shape (F,) or (B, F) with F = W_t.shape[0] = {w_t.shape[0]}, got {h.shape}")


def active_indices(h):
    """The sorted indices ``j`` where ``h[..., j]`` is nonzero in any row (int64, same module as ``h``)."""
    xp = array_module(h)
    if h.ndim == 2 and h.shape[0] == 1:
        h = h[0]
    return xp.flatnonzero(h if h.ndim == 1 else (h != 0).any(axis=0))


def reference(h, w_t):
    """``h @ W_t`` computed as ``h[..., idx] @ W_t[idx]``: shape ``(D,)`` or ``(B, D)``, dtype of ``h``."""
    _check(h, w_t)
    xp = array_module(h, w_t)
    idx = active_indices(h)
    if idx.size == 0:
        return xp.zeros(h.shape[:-1] + (w_t.shape[1],), dtype=h.dtype)
    return h[..., idx] @ w_t[idx]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _rows_into(h, idx, k0, k1, w, acc):
    """``acc += sum_{k0 <= k < k1} h[:, idx[k]] outer w[idx[k], :]``; ``acc`` ``(B, D)``, in L1 for one token.

    Four rows at a time: four concurrent memory streams (the rows are far
    apart, so one stream at a time leaves the memory system idle between
    rows) and a quarter of the loads and stores of ``acc``; 25% faster here.
    """
    d = w.shape[1]
    k = k0
    while k + 4 <= k1:
        j0, j1, j2, j3 = idx[k], idx[k + 1], idx[k + 2], idx[k + 3]
        for b in range(h.shape[0]):
            a0, a1, a2, a3 = h[b, j0], h[b, j1], h[b, j2], h[b, j3]
            for t in range(d):
                acc[b, t] += a0 * w[j0, t] + a1 * w[j1, t] + a2 * w[j2, t] + a3 * w[j3, t]
        k += 4
    for k in range(k, k1):
        j = idx[k]
        for b in range(h.shape[0]):
            a = h[b, j]
            if a != 0.0:
                for t in range(d):
                    acc[b, t] += a * w[j, t]


@numba.njit(cache=True, nogil=True)
def _active(h):
    """:func:`active_indices` of a ``(B, F)`` array in one compiled pass (no temporaries)."""
    idx = np.empty(h.shape[1], dtype=np.int64)
    n = 0
    for j in range(h.shape[1]):
        for b in range(h.shape[0]):
            if h[b, j] != 0.0:
                idx[n] = j
                n += 1
                break
    return idx[:n]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _serial(h, idx, w, out):
    out[:] = 0.0
    _rows_into(h, idx, 0, idx.size, w, out)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _serial_all(h, w, out):
    """:func:`_serial` finding the active indices itself (one compiled call: less dispatch overhead)."""
    _serial(h, _active(h), w, out)


@numba.njit(cache=True, nogil=True, fastmath=True, parallel=True)
def _parallel(h, idx, w, out, parts):
    """Each of ``parts`` threads sums a contiguous share of the active rows into its own partial output."""
    n = idx.size
    partial = np.zeros((parts,) + out.shape, dtype=out.dtype)
    for p in numba.prange(parts):
        _rows_into(h, idx, p * n // parts, (p + 1) * n // parts, w, partial[p])
    out[:] = partial[0]
    for p in range(1, parts):
        out += partial[p]


def cpu(h, w_t):
    """The numba fast path; equal to :func:`reference` up to summation order.

    Reads each active row of ``W_t`` whole (a contiguous ``D``-vector) and
    accumulates into a ``(B, D)`` output; above :data:`SERIAL_WORK`
    multiply-adds the active rows are split among numba's threads, each with
    its own partial sum.
    """
    _check(h, w_t)
    h2 = np.ascontiguousarray(h.reshape(1, -1) if h.ndim == 1 else h)
    w = np.ascontiguousarray(w_t)  # a strided W_t is copied once (as costly as the dense product)
    out = np.empty((h2.shape[0], w.shape[1]), dtype=h.dtype)
    if h2.size * w.shape[1] <= SERIAL_WORK:  # serial even if every input is active
        _serial_all(h2, w, out)
        return out.reshape(w.shape[1]) if h.ndim == 1 else out
    idx = _active(h2)
    threads = 1 if idx.size * w.shape[1] * h2.shape[0] <= SERIAL_WORK else numba.get_num_threads()
    if threads == 1:
        _serial(h2, idx, w, out)
    else:
        _parallel(h2, idx, w, out, min(threads, idx.size))
    return out.reshape(w.shape[1]) if h.ndim == 1 else out


#: CUDA grid limit along y (one block row per batch row).
_MAX_GRID_Y = 65535
#: Active rows per block along z (a single token's rows spread over many multiprocessors), at most 256 shares.
_ROWS_PER_SHARE = 32


def _launch(kernel, h, w_t):
    _check(h, w_t)
    import cupy

    h2 = cupy.ascontiguousarray(h.reshape(1, -1) if h.ndim == 1 else h)
    w = cupy.ascontiguousarray(w_t)
    idx = active_indices(h2).astype(cupy.int64, copy=False)
    n_rows, f = h2.shape
    d = w.shape[1]
    out = cupy.zeros((n_rows, d), dtype=h.dtype)  # the kernel adds its partial sums atomically
    k = int(idx.size)
    if k == 0 or d == 0:
        return out.reshape(d) if h.ndim == 1 else out
    threads = 256
    shares = min(256, -(-k // _ROWS_PER_SHARE))
    for b0 in range(0, n_rows, _MAX_GRID_Y):
        b1 = min(n_rows, b0 + _MAX_GRID_Y)
        grid = ((d + threads - 1) // threads, b1 - b0, shares)
        kernel(grid, (threads, 1, 1), (h2[b0:b1], idx, w, out[b0:b1], np.int64(k), np.int64(f), np.int64(d)))
    return out.reshape(d) if h.ndim == 1 else out


gather_matmul_kernel = register(
    "gather_matmul",
    reference=reference,
    cpu=cpu,
    cuda_source=Path(__file__).with_name("gather_matmul.cu"),
    cuda_function="gather_matmul",
    cuda_launch=_launch,
    doc="h @ W_t reading only the rows of W_t where h is nonzero",
)


def gather_matmul(h, w_t):
    """``h @ W_t`` for a sparse ``h``, reading only the rows of ``W_t`` where ``h`` is nonzero.

    Parameters
    ----------
    h : ndarray ``(F,)`` or ``(B, F)``, float32 or float64 (NumPy or CuPy)
    w_t : ndarray ``(F, D)``, the same dtype and module (a Linear's ``weight.T``,
        stored C-contiguous for speed; a strided one is copied first)

    Returns
    -------
    ndarray ``(D,)`` or ``(B, D)``, dtype of ``h``, on the same device.
    """
    return call("gather_matmul", h, w_t)
