"""Host side of the CUDA scans in ``block_scan.cu``: the hierarchical multi-block scheme.

A row of ``n`` elements is cut into tiles of ``TILE`` elements, one thread
block each. For more than one tile per row:

1. reduce pass (``MODE_WRITE_SUMS``): each block writes its tile's total;
2. the totals, a ``(rows, tiles)`` batch, are scanned by the same scheme
   (recursively, so any length works) and shifted into exclusive prefixes,
   the *carries*;
3. scan pass (``MODE_WRITE_Y | MODE_USE_CARRY``): each block scans its tile
   and puts its carry in front.

The functions are written against ``xp`` and take the compiled kernel as a
callable ``kernel(grid, block, args)``, as ``cupy.RawKernel`` is called; the
tests drive them with a NumPy emulation of the kernel's contract, so the
host logic is checked without a GPU.
"""

from __future__ import annotations

import math

import numpy as np

from neuro.backend import array_module

__all__ = ["BLOCK", "TILE", "MODE_WRITE_SUMS", "MODE_WRITE_Y", "MODE_USE_CARRY", "MODE_WRITE_A",
           "launch_add", "launch_recurrence", "scan_rows"]

#: Threads per block and elements per block (``BLOCK`` and ``TILE`` in block_scan.cu).
BLOCK = 256
TILE = 2 * BLOCK

MODE_WRITE_SUMS = 1
MODE_WRITE_Y = 2
MODE_USE_CARRY = 4
MODE_WRITE_A = 8

_IDENTITY = {"add": (0.0,), "affine": (1.0, 0.0)}

#: CUDA's limit on gridDim.x; larger batches are launched in slices of rows.
MAX_GRID = 2**31 - 1

def scan_rows(kernel, kind: str, inputs: tuple, outputs: tuple) -> None:
    """Inclusive scan of each row of ``inputs`` (C-contiguous ``(R, n)`` arrays) into ``outputs``.

    ``kind`` is ``"add"`` (one input, one output) or ``"affine"`` (inputs
    ``(a, b)``, outputs ``(ya, yb)``; ``ya`` may be ``None`` when only the
    ``b`` part is wanted).
    """
    xp = array_module(*inputs)
    R, n = inputs[-1].shape
    if R == 0 or n == 0:
        return
    dtype = inputs[-1].dtype
    tiles = math.ceil(n / TILE)
    max_rows = MAX_GRID // tiles
    if R > max_rows:  # one block per tile would exceed the grid limit: slices of rows (contiguous views)
        for r0 in range(0, R, max_rows):
            rows = slice(r0, r0 + max_rows)
            scan_rows(kernel, kind, tuple(x[rows] for x in inputs), tuple(None if o is None else o[rows] for o in outputs))
        return
    dummy = xp.empty(1, dtype=dtype)
    grid = (R * tiles,)
    n64, tiles64 = np.int64(n), np.int64(tiles)
    write_a = MODE_WRITE_A if kind == "affine" and outputs[0] is not None else 0

    def launch(outs, sums, carry, mode):
        outs = tuple(dummy if o is None else o for o in outs)
        if kind == "add":
            args = (inputs[0], outs[0], sums[0], carry[0], n64, tiles64, np.int32(mode))
        else:
            args = (*inputs, *outs, *sums, *carry, n64, tiles64, np.int32(mode))
        kernel(grid, (BLOCK,), args)

    none = (dummy,) * len(inputs)
    if tiles == 1:
        launch(outputs, none, none, MODE_WRITE_Y | write_a)
        return
    sums = tuple(xp.empty((R, tiles), dtype=dtype) for _ in inputs)
    launch((None,) * len(inputs), sums, none, MODE_WRITE_SUMS)
    scanned = tuple(xp.empty((R, tiles), dtype=dtype) for _ in inputs)
    scan_rows(kernel, kind, sums, scanned)
    carry = []
    for s, ident in zip(scanned, _IDENTITY[kind]):
        c = xp.empty((R, tiles), dtype=dtype)
        c[:, 0] = ident  # not read by the kernel; the arithmetic identity, for emulators that do read it
        c[:, 1:] = s[:, :-1]
        carry.append(c)
    launch(outputs, none, tuple(carry), MODE_WRITE_Y | MODE_USE_CARRY | write_a)


def launch_add(kernel, x, *, axis=0):
    """Inclusive prefix sums of ``x`` along ``axis`` (the registry's CUDA launcher of ``scans.scan_add``)."""
    xp = array_module(x)
    moved = xp.moveaxis(x, axis, -1)
    rows = xp.ascontiguousarray(moved).reshape(-1, moved.shape[-1]) if moved.size else moved.reshape(0, 0)
    out = xp.empty(rows.shape, dtype=x.dtype)
    scan_rows(kernel, "add", (rows,), (out,))
    return xp.moveaxis(out.reshape(moved.shape), -1, axis)


def launch_recurrence(kernel, a, b, h0, *, reverse=False):
    """``h[t] = a[t] * h[t-1] + b[t]`` on canonical ``(P, T, Q)`` arrays (launcher of ``scans.linear_recurrence``).

    ``h0`` (``(P, Q)``) is folded into the first step, ``b[t0] += a[t0] * h0``,
    so one affine scan from ``h = 0`` gives the result.
    """
    xp = array_module(a, b, h0)
    P, T, Q = b.shape
    dtype = xp.result_type(a, b, h0)  # the dtype of the kernel the registry picked for these arrays
    if b.size == 0:
        return xp.empty((P, T, Q), dtype=dtype)

    def rows(x, copy):
        x = xp.moveaxis(x, 1, 2)  # (P, Q, T)
        if reverse:
            x = x[..., ::-1]
        x = xp.array(x, dtype=dtype, order="C", copy=True) if copy else xp.ascontiguousarray(x, dtype=dtype)
        return x.reshape(P * Q, T)

    a_rows, b_rows = rows(a, False), rows(b, True)
    # column 0 is the first step taken (t = T-1 when reverse, after the flip)
    b_rows[:, 0] += a_rows[:, 0] * h0.reshape(P * Q).astype(dtype, copy=False)
    h = xp.empty((P * Q, T), dtype=dtype)
    scan_rows(kernel, "affine", (a_rows, b_rows), (None, h))
    h = h.reshape(P, Q, T)
    if reverse:
        h = h[..., ::-1]
    return xp.ascontiguousarray(xp.moveaxis(h, 2, 1))
