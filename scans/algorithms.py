"""The three scan algorithms, written once against ``xp`` (NumPy or CuPy).

Every function here works on a *canonical* element structure: a tuple of
arrays ("leaves") whose leading axis is the scan axis (length ``n``; the
other axes are batch axes, carried along). ``op`` is called on pairs of such
structures; :func:`apply` passes a bare array instead of a 1-tuple when the
user gave a single array. All three return the inclusive scan, as a tuple of
new arrays.

* :func:`sequential`: ``y[0] = x[0]; y[t] = op(y[t-1], x[t])``. ``n - 1``
  applications, depth ``n - 1``. The oracle.
* :func:`hillis_steele`: ``log2 n`` rounds; round ``d`` combines every
  element with the one ``2^d`` before it. ``n log2 n - n + 1`` applications,
  depth ``ceil(log2 n)``.
* :func:`blelloch`: the work-efficient tree scan, in place. The up-sweep
  (reduction tree) leaves at position ``i`` the reduction of the ``2^k``
  elements ending there (``2^k`` the largest power of two dividing ``i + 1``);
  the down-sweep then walks the tree back down, giving each position the
  prefix to its left. We use the *inclusive* down-sweep (Brent and Kung),
  ``x[i] = op(x[i - s], x[i])`` for ``i = 3s-1, 5s-1, ...``, which needs no
  identity and no padding, so any length works. Fewer than ``2n``
  applications, depth about ``2 log2 n``. (The classic exclusive down-sweep
  with the identity at the root is in the CUDA block scan, ``block_scan.cu``.)

Operator applications are counted (per element pair along the scan axis; a
batch is one application) for :func:`scans.count_ops`.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from neuro.backend import array_module

__all__ = ["ALGORITHMS", "OpCount", "apply", "blelloch", "counting", "hillis_steele", "sequential"]


@dataclass
class OpCount:
    """How much work a scan did: operator ``applications`` (element pairs) and ``rounds`` (calls of ``op``)."""

    applications: int = 0
    rounds: int = 0


_COUNTER: contextvars.ContextVar[OpCount | None] = contextvars.ContextVar("scans_op_counter", default=None)


@contextlib.contextmanager
def counting() -> Iterator[OpCount]:
    """Count operator applications made by the algorithms in this context."""
    counter = OpCount()
    token = _COUNTER.set(counter)
    try:
        yield counter
    finally:
        _COUNTER.reset(token)


def apply(op: Callable, x: tuple, y: tuple, is_tuple: bool) -> tuple:
    """``op(x, y)`` on canonical structures (leading length ``k``); returns a tuple of leaves."""
    k = x[0].shape[0]
    out = op(x, y) if is_tuple else op(x[0], y[0])
    if is_tuple:
        if not isinstance(out, (tuple, list)) or len(out) != len(x):
            raise TypeError(f"op must return a tuple of {len(x)} arrays (as it was given), got {type(out).__name__}")
        out = tuple(out)
    else:
        out = (out,)
    xp = array_module(*x, *y)
    out = tuple(xp.asarray(leaf) for leaf in out)
    for leaf in out:
        if leaf.ndim == 0 or leaf.shape[0] != k:
            raise ValueError(
                f"op must keep the leading (scan) axis: given {k} pairs it returned an array of shape {leaf.shape}"
            )
    counter = _COUNTER.get()
    if counter is not None:
        counter.applications += k
        counter.rounds += 1
    return out


def take(leaves: tuple, start: int, stop: int, step: int = 1) -> tuple:
    """Each leaf sliced ``[start:stop:step]`` along the scan axis (views)."""
    return tuple(leaf[start:stop:step] for leaf in leaves)


def stack(pieces: list) -> Any:
    """Concatenate arrays along the scan axis, broadcasting their batch shapes to a common one."""
    xp = array_module(*pieces)
    shapes = {p.shape[1:] for p in pieces}
    if len(shapes) > 1:
        batch = np.broadcast_shapes(*shapes)
        pieces = [xp.broadcast_to(p, p.shape[:1] + batch) for p in pieces]
    return xp.concatenate(pieces, axis=0)


def _copy(leaves: tuple) -> tuple:
    return tuple(array_module(leaf).array(leaf, copy=True) for leaf in leaves)


def sequential(op: Callable, leaves: tuple, is_tuple: bool) -> tuple:
    """The O(n) loop: ``y[t] = op(y[t-1], x[t])``. The oracle."""
    n = leaves[0].shape[0]
    if n < 2:
        return _copy(leaves)
    acc = take(leaves, 0, 1)
    outs = [acc]
    for t in range(1, n):
        acc = apply(op, acc, take(leaves, t, t + 1), is_tuple)
        outs.append(acc)
    return tuple(stack([o[i] for o in outs]) for i in range(len(leaves)))


def hillis_steele(op: Callable, leaves: tuple, is_tuple: bool) -> tuple:
    """O(n log n) work, ``ceil(log2 n)`` rounds: ``y[i] = op(y[i - d], y[i])`` for ``i >= d``, ``d = 1, 2, 4, ...``."""
    n = leaves[0].shape[0]
    y = _copy(leaves)
    d = 1
    while d < n:
        combined = apply(op, take(y, 0, n - d), take(y, d, n), is_tuple)
        y = tuple(stack([old[:d], new]) for old, new in zip(y, combined))
        d *= 2
    return y


def _strided_pairs(n: int, first: int, step: int, s: int) -> tuple[slice, slice] | None:
    """Slices of ``(i - s, i)`` for ``i = first, first + step, ... < n``; ``None`` if there is no such ``i``."""
    if first >= n:
        return None
    last = first + step * ((n - 1 - first) // step)
    return slice(first - s, last - s + 1, step), slice(first, last + 1, step)


def blelloch(op: Callable, leaves: tuple, is_tuple: bool) -> tuple:
    """Work-efficient up-sweep / down-sweep scan, any length: fewer than ``2n`` applications."""
    n = leaves[0].shape[0]
    if n < 2:
        return _copy(leaves)
    xp = array_module(*leaves)
    # Up-sweep, first level (stride 1), out of place: it fixes the result's dtypes and batch shapes.
    m = n // 2
    first = apply(op, take(leaves, 0, 2 * m, 2), take(leaves, 1, 2 * m, 2), is_tuple)
    y = []
    for x, f in zip(leaves, first):
        buf = xp.empty((n,) + np.broadcast_shapes(x.shape[1:], f.shape[1:]), dtype=xp.result_type(x, f))
        buf[...] = x
        buf[1 : 2 * m : 2] = f
        y.append(buf)
    y = tuple(y)
    # Up-sweep: at stride s, x[i] = op(x[i - s], x[i]) for i = 2s-1, 4s-1, ...
    s = 2
    while 2 * s <= n:
        left, right = _strided_pairs(n, 2 * s - 1, 2 * s, s)
        for buf, new in zip(y, apply(op, take(y, left.start, left.stop, left.step), take(y, right.start, right.stop, right.step), is_tuple)):
            buf[right] = new
        s *= 2
    # Down-sweep (inclusive): at stride s, x[i] = op(x[i - s], x[i]) for i = 3s-1, 5s-1, ...
    s //= 2
    while s >= 1:
        pairs = _strided_pairs(n, 3 * s - 1, 2 * s, s)
        if pairs is not None:
            left, right = pairs
            for buf, new in zip(y, apply(op, take(y, left.start, left.stop, left.step), take(y, right.start, right.stop, right.step), is_tuple)):
                buf[right] = new
        s //= 2
    return y


#: The NumPy/CuPy algorithms by name.
ALGORITHMS: dict[str, Callable[[Callable, tuple, bool], tuple]] = {
    "sequential": sequential,
    "hillis_steele": hillis_steele,
    "blelloch": blelloch,
}
