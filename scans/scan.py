"""``scan``: the prefix scan of an associative operator, in the spirit of ``jax.lax.associative_scan``."""

from __future__ import annotations

import functools
import numbers
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuro.backend import array_module, is_cupy_array
from neuro.kernels import register

from . import algorithms, gpu, ops
from .algorithms import ALGORITHMS, OpCount, counting

__all__ = ["scan", "count_ops", "ALGORITHM_NAMES"]

#: Accepted values of ``algorithm``.
ALGORITHM_NAMES = ("auto", "sequential", "hillis_steele", "blelloch")

_NO_IDENTITY = object()


def _scan_add_reference(x, *, axis=0):
    """Inclusive prefix sums along ``axis`` by the Blelloch scan (NumPy or CuPy)."""
    xp = array_module(x)
    return xp.moveaxis(algorithms.blelloch(ops.add, (xp.moveaxis(x, axis, 0),), False)[0], 0, axis)


def _scan_add_cpu(x, *, axis=0):
    """``numpy.add.accumulate``: a sequential C loop, the CPU's practical limit."""
    return np.add.accumulate(x, axis=axis)


register(
    "scans.scan_add",
    reference=_scan_add_reference,
    cpu=_scan_add_cpu,
    cuda_source=Path(__file__).with_name("block_scan.cu"),
    cuda_function="scan_add",
    cuda_launch=gpu.launch_add,
    doc="inclusive prefix sums of x along axis",
)


@functools.lru_cache(maxsize=None)
def _accumulate_dtype(name: str, dtype: np.dtype) -> np.dtype:
    """The result dtype of ``numpy.cumsum`` (``add``) or ``numpy.cumprod`` (``mul``) on ``dtype``."""
    return (np.cumsum if name == "add" else np.cumprod)(np.zeros(1, dtype)).dtype


def _numpy_dtype(op, leaves: tuple) -> tuple:
    """As ``numpy.cumsum`` / ``cumprod``: bools and small ints of ``add``/``mul`` widen to the platform int.

    Done before any algorithm runs, so every algorithm and backend gives the
    same dtype (``maximum``/``minimum`` keep the dtype, as their ``accumulate``).
    """
    name = getattr(op, "name", None)
    if name in ("add", "mul") and ops.BUILTINS.get(name) is op and leaves[0].dtype.kind in "biu":
        target = _accumulate_dtype(name, leaves[0].dtype)
        if target != leaves[0].dtype:
            return (leaves[0].astype(target),)
    return leaves


#: Built-ins whose parallel algorithms reassociate float arithmetic (see :func:`_sequential_where_nonfinite`).
_REASSOCIATED = ("add", "mul", "affine")


def _sequential_columns(op, cols: tuple, is_tuple: bool) -> tuple:
    """The sequential scan of ``cols`` (leaves of shape ``(n, k)``), compiled where there is a loop for it."""
    xp = array_module(*cols)
    if xp is np and op.name in ("add", "mul"):
        return (ops.UFUNCS[op.name].accumulate(cols[0], axis=0),)
    if xp is np and op.name == "affine" and all(c.dtype in (np.float32, np.float64) for c in cols):
        from .recurrence import linear_recurrence

        return np.multiply.accumulate(cols[0], axis=0), linear_recurrence(cols[0], cols[1], axis=0, impl="cpu")
    return algorithms.sequential(op, cols, is_tuple)


def _sequential_where_nonfinite(op, leaves: tuple, out: tuple, is_tuple: bool) -> tuple:
    """``out`` with each batch column that holds inf or NaN replaced by the sequential loop's answer.

    A parallel scan reassociates: after an overflow, a reassociated partial
    result can be ``inf - inf`` or ``0 * inf`` (NaN) where the loop, as
    ``numpy.cumsum``/``cumprod`` and the compiled recurrence, carries ``inf``.
    Recomputing the non-finite columns of finite inputs (rare; the others
    are left alone) makes every algorithm agree with the loop there.
    """
    xp = array_module(*out)
    if out[0].shape[0] == 0 or not any(o.dtype.kind in "fc" for o in out):
        return out
    bad = None
    for o in out:
        if o.dtype.kind in "fc":
            col = ~xp.isfinite(o).all(axis=0)
            bad = col if bad is None else bad | col
    if not bool(bad.any()):
        return out
    n, shape = out[0].shape[0], out[0].shape
    for leaf in leaves:  # only columns whose inputs are finite: NaN or inf given stays the caller's
        if leaf.dtype.kind in "fc":
            bad = bad & xp.broadcast_to(xp.isfinite(leaf).all(axis=0), bad.shape)
    if not bool(bad.any()):
        return out
    if any(o.shape != shape for o in out):  # broadcast leaves (an affine decay shared across rows)
        return _sequential_columns(op, leaves, is_tuple)
    flat = tuple(o.reshape(n, -1) for o in out)
    cols_bad = xp.nonzero(bad.reshape(-1))[0]
    cols = tuple(xp.broadcast_to(leaf, shape).reshape(n, -1)[:, cols_bad] for leaf in leaves)
    for f, fixed in zip(flat, _sequential_columns(op, cols, is_tuple)):
        f[:, cols_bad] = fixed
    return tuple(f.reshape(shape) for f in flat)


#: The ufunc of each built-in whose plain 1-D call takes the fast path of :func:`scan`.
_PLAIN_UFUNCS = {ops.add: np.add, ops.mul: np.multiply, ops.maximum: np.maximum, ops.minimum: np.minimum}


def _leaves(elems: Any) -> tuple[tuple, bool]:
    """``elems`` as a tuple of arrays, and whether it was given as a tuple (a list is one array-like)."""
    if isinstance(elems, tuple):
        if len(elems) == 0:
            raise ValueError("elems must be an array or a non-empty tuple of arrays, got an empty tuple")
        is_tuple = True
        raw = tuple(elems)
    else:
        is_tuple = False
        raw = (elems,)
    xp = array_module(*raw)
    leaves = []
    for i, leaf in enumerate(raw):
        if not (isinstance(leaf, (np.ndarray, numbers.Number, list)) or is_cupy_array(leaf)):
            raise TypeError(f"elems{f'[{i}]' if is_tuple else ''} must be an array, got {type(leaf).__name__}")
        leaf = xp.asarray(leaf)
        if leaf.ndim == 0:
            raise ValueError(f"elems{f'[{i}]' if is_tuple else ''} must have at least one axis (the scan axis), got a 0-d array")
        leaves.append(leaf)
    return tuple(leaves), is_tuple


def _normalize_axis(axis: Any, leaves: tuple) -> tuple[int, ...]:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    out = []
    for i, leaf in enumerate(leaves):
        if not -leaf.ndim <= axis < leaf.ndim:
            raise ValueError(f"axis {axis} is out of range for elems{f'[{i}]' if len(leaves) > 1 else ''} with {leaf.ndim} dimensions")
        out.append(int(axis) % leaf.ndim)
    return tuple(out)


def _prepare(op, elems, axis, algorithm):
    if not callable(op):
        raise TypeError(f"op must be callable (e.g. scans.ops.add), got {type(op).__name__}")
    if algorithm not in ALGORITHM_NAMES:
        raise ValueError(f"algorithm must be one of {ALGORITHM_NAMES}, got {algorithm!r}")
    leaves, is_tuple = _leaves(elems)
    n_leaves = getattr(op, "n_leaves", None)
    if n_leaves is not None and (not is_tuple or len(leaves) != n_leaves):
        raise TypeError(
            f"{op!r} scans tuples of {n_leaves} arrays, got "
            + (f"a tuple of {len(leaves)}" if is_tuple else "a single array")
        )
    axes = _normalize_axis(axis, leaves)
    lengths = {leaf.shape[ax] for leaf, ax in zip(leaves, axes)}
    if len(lengths) > 1:
        shapes = [leaf.shape for leaf in leaves]
        raise ValueError(f"all arrays in elems must have the same length along axis {axis}, got shapes {shapes}")
    # canonical: scan axis first
    xp = array_module(*leaves)
    canon = tuple(xp.moveaxis(leaf, ax, 0) for leaf, ax in zip(leaves, axes))
    return canon, is_tuple, axes


def _fast_inclusive(op, leaves: tuple, is_tuple: bool):
    """The fast path of ``algorithm="auto"``, or ``None`` where there is none (then Blelloch is used)."""
    name = getattr(op, "name", None)
    if ops.BUILTINS.get(name) is not op:
        return None
    xp = array_module(*leaves)
    n = leaves[0].shape[0]
    if n < 2:
        return None
    if name == "affine":
        from .recurrence import _fast_affine_scan

        return _fast_affine_scan(*leaves)
    if name == "add" and xp is not np and leaves[0].dtype in (np.float32, np.float64):
        from neuro.kernels import call

        return (call("scans.scan_add", leaves[0], axis=0),)
    if xp is np and name in ops.UFUNCS and leaves[0].dtype.kind in "biufc":
        if name == "logaddexp" and leaves[0].dtype.kind not in "f":
            return None
        return (ops.UFUNCS[name].accumulate(leaves[0], axis=0),)
    return None


def scan(
    op: Callable,
    elems: Any,
    *,
    axis: int = 0,
    reverse: bool = False,
    inclusive: bool = True,
    identity: Any = _NO_IDENTITY,
    algorithm: str = "auto",
) -> Any:
    """Prefix scan of the associative operator ``op`` over ``elems`` along ``axis``.

    ``y[t] = op(...op(op(x[0], x[1]), x[2])..., x[t])`` (inclusive), or the
    same over ``x[0..t-1]`` with ``y[0] = identity`` (exclusive).

    Parameters
    ----------
    op : callable
        ``op(x, y)``, associative and vectorized: given two elements with the
        same structure as ``elems`` and a leading axis of equal length ``k``
        it combines the ``k`` pairs (``x`` the earlier) and returns the same
        structure. The built-ins are in :mod:`scans.ops`.
    elems : array or tuple of arrays, NumPy or CuPy
        Scanned together along ``axis`` (the same length in every array);
        all other axes are batch axes, carried along (broadcasting between
        the arrays of a tuple is up to ``op``).
    axis : int
        The scan axis (negative counts from the end of each array).
    reverse : bool
        Scan from the end: ``y[t]`` combines ``x[n-1], ..., x[t]`` in that order
        (as ``jax.lax.associative_scan``); for ``ops.affine`` this solves
        ``h[t] = a[t] * h[t+1] + b[t]``.
    inclusive : bool
        ``False`` gives the exclusive scan, which needs the identity.
    identity : value, tuple of values or callable, optional
        The identity of ``op`` for an exclusive scan; default: ``op``'s own
        (every :mod:`scans.ops` built-in has one).
    algorithm : {"auto", "sequential", "hillis_steele", "blelloch"}
        ``"auto"`` picks the fastest correct path: on NumPy a ufunc's
        ``accumulate`` for the elementwise built-ins, the compiled
        linear-recurrence loop for ``ops.affine`` (float/complex), and
        ``"blelloch"`` otherwise; on CuPy the CUDA kernels for ``add`` and
        ``affine`` (float32/float64), ``"blelloch"`` otherwise.

    Notes
    -----
    Every algorithm gives the same dtype and, for the built-ins, the same
    answer up to float rounding: ``add`` and ``mul`` follow ``numpy.cumsum``
    and ``numpy.cumprod`` (bools and ints narrower than the platform int
    widen to it, e.g. ``scan(ops.add, [True, True])`` is ``[1, 2]``);
    ``maximum``/``minimum`` keep the dtype. Where a float overflow makes a
    parallel algorithm's result inf or NaN in a batch column, that column is
    recomputed by the sequential loop (so ``inf`` after an overflow stays
    ``inf``, as in ``numpy.cumsum``, instead of becoming NaN).

    Returns
    -------
    Same structure as ``elems``: arrays of the shapes ``op`` produces (the
    inputs' shapes for the built-ins), on the same device. Empty input gives
    empty output.

    Raises
    ------
    TypeError
        ``op`` not callable, ``elems`` not arrays, or not the structure ``op`` takes.
    ValueError
        ``axis`` out of range, arrays of different lengths along ``axis``, an
        unknown ``algorithm``, or an exclusive scan without an identity.
    """
    if (type(elems) is np.ndarray and elems.ndim == 1 and type(op) is ops.Op and algorithm == "auto"
            and inclusive and type(axis) is int and -1 <= axis <= 0 and elems.dtype.kind in "biuf"):
        ufunc = _PLAIN_UFUNCS.get(op)
        if ufunc is not None:  # the common call, without the general machinery (same dtypes and values)
            return ufunc.accumulate(elems[::-1])[::-1] if reverse else ufunc.accumulate(elems)
    leaves, is_tuple, axes = _prepare(op, elems, axis, algorithm)
    leaves = _numpy_dtype(op, leaves)
    if not inclusive and identity is _NO_IDENTITY and not getattr(op, "has_identity", False):
        raise ValueError(
            f"an exclusive scan needs the identity of op {getattr(op, 'name', op)!r}: pass identity=..., "
            "or use an operator from scans.ops"
        )
    xp = array_module(*leaves)
    n = leaves[0].shape[0]
    if reverse:
        leaves = tuple(leaf[::-1] for leaf in leaves)
    if inclusive:
        out = _inclusive(op, leaves, is_tuple, algorithm)
    else:
        like = tuple(leaf[:1] for leaf in leaves)
        if n == 0:
            out = tuple(xp.array(leaf, copy=True) for leaf in leaves)
        else:
            raw_like = like if is_tuple else like[0]
            if identity is _NO_IDENTITY:
                ident = op.identity(raw_like)
            else:
                ident = ops.broadcast_identity(identity, raw_like)
            ident = tuple(ident) if is_tuple else (ident,)
            body = _inclusive(op, algorithms.take(leaves, 0, n - 1), is_tuple, algorithm)
            out = tuple(algorithms.stack([xp.asarray(i), b]) for i, b in zip(ident, body))
    if reverse:
        out = tuple(leaf[::-1] for leaf in out)
    out = tuple(xp.moveaxis(leaf, 0, ax) for leaf, ax in zip(out, axes))
    return out if is_tuple else out[0]


def _inclusive(op, leaves, is_tuple, algorithm):
    xp = array_module(*leaves)
    if algorithm == "auto":
        fast = _fast_inclusive(op, leaves, is_tuple)
        if fast is not None:
            # NumPy's fast paths are sequential loops; CuPy's kernels are parallel
            return fast if xp is np else _check_overflow(op, leaves, fast, is_tuple)
        algorithm = "blelloch"
    out = ALGORITHMS[algorithm](op, leaves, is_tuple)
    return out if algorithm == "sequential" else _check_overflow(op, leaves, out, is_tuple)


def _check_overflow(op, leaves, out, is_tuple):
    name = getattr(op, "name", None)
    if name in _REASSOCIATED and ops.BUILTINS.get(name) is op:
        return _sequential_where_nonfinite(op, leaves, out, is_tuple)
    return out


def count_ops(op: Callable, elems: Any, *, algorithm: str = "blelloch", **scan_kwargs: Any) -> OpCount:
    """Run :func:`scan` and count the work: operator ``applications`` and ``rounds``.

    One application combines one pair of elements along the scan axis (a
    batch of such pairs counts once per pair, not per batch entry); one round
    is one vectorized call of ``op``. For ``n`` elements ``"sequential"`` does
    ``n - 1`` applications in ``n - 1`` rounds, ``"hillis_steele"``
    ``n log2 n - n + 1`` in ``ceil(log2 n)`` rounds, ``"blelloch"`` fewer
    than ``2n`` in about ``2 log2 n`` rounds.

    ``algorithm`` must name one of the three (the fast paths of ``"auto"`` do
    not call ``op``).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {tuple(ALGORITHMS)} to count operator applications, got {algorithm!r}")
    with counting() as counter:
        scan(op, elems, algorithm=algorithm, **scan_kwargs)
    return counter
