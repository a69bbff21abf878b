"""Linear recurrences ``h[t] = a[t] * h[t-1] + b[t]`` and ``h[t] = A[t] @ h[t-1] + b[t]``.

The workhorse of state-space models, linear RNNs and RWKV. Both are scans of
the ``affine`` / ``matrix_affine`` operators (:mod:`scans.ops`); here they
get their own entry points and kernels (see :mod:`neuro.kernels.registry`):

``scans.linear_recurrence`` (elementwise)
    * reference: the Blelloch scan of ``ops.affine`` (NumPy or CuPy);
    * cpu: a loop compiled with numba, sequential in time and vectorized
      over the other axes. Measured against a chunked NumPy scan it is
      faster by an order of magnitude (``benchmarks/bench_scans.py``); on one
      long float64 sequence it runs at about half the time of ``numpy.cumsum``;
    * cuda: the hierarchical Blelloch block scan of ``block_scan.cu``.
``scans.matrix_recurrence`` (small dense state matrices)
    * reference: the Blelloch scan of ``ops.matrix_affine``;
    * cpu: a numba loop.

Both registered kernels take *canonical* arrays: the time axis in the middle,
``a, b: (P, T, Q)`` and ``h0: (P, Q)`` (elementwise), ``A: (P, T, N, N)``,
``b: (P, T, N)``, ``h0: (P, N)`` (matrix); the public functions reshape to
that form (without copying when the input is contiguous).
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numba
import numpy as np

from neuro.backend import array_module, is_cupy_array
from neuro.kernels import call, register

from . import gpu, ops
from .algorithms import blelloch

__all__ = ["linear_recurrence", "matrix_recurrence"]


# ------------------------------------------------------------------ dtypes


def _result_dtype(*objs: Any) -> np.dtype:
    """The floating (or complex) dtype of the result; ints and bools compute in float64."""
    parts = []
    for o in objs:
        if o is None:
            continue
        if hasattr(o, "dtype"):
            parts.append(o.dtype)
        elif isinstance(o, numbers.Number):
            parts.append(o)
        else:
            parts.append(np.asarray(o).dtype)
    dt = np.result_type(*parts)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    if dt == np.float16:
        return np.dtype(np.float32)
    if dt.kind not in "fc":
        raise TypeError(f"a, b and h0 must be real or complex numbers, got dtype {dt}")
    return dt


def _as_array(xp, x, name):
    if not (isinstance(x, (np.ndarray, numbers.Number, list, tuple)) or is_cupy_array(x)):
        raise TypeError(f"{name} must be an array or a number, got {type(x).__name__}")
    return xp.asarray(x)


def _axis(axis, ndim, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} {axis} is out of range for arrays with {ndim} dimensions")
    return int(axis) % ndim


def _broadcast(xp, x, shape, dtype):
    """``x`` as ``dtype``, broadcast to ``shape`` (a view where possible)."""
    x = x.astype(dtype, copy=False)
    return x if x.shape == shape else xp.broadcast_to(x, shape)


def _initial_state(xp, h0, state_shape, dtype, axis):
    """``h0`` as an array that broadcasts to ``state_shape`` (zeros when ``None``)."""
    if h0 is None:
        return xp.zeros(state_shape, dtype=dtype)
    h0_arr = _as_array(xp, h0, "h0")
    try:
        fits = np.broadcast_shapes(h0_arr.shape, state_shape) == state_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"h0 of shape {h0_arr.shape} must broadcast to the state shape {state_shape} "
            f"(the result's shape without the time axis {axis})"
        )
    return h0_arr


# ------------------------------------------------------ elementwise kernels


@numba.njit(cache=True, nogil=True)
def _recurrence_rows(a, b, h0, out, reverse):  # pragma: no cover - compiled
    """Time is the contiguous axis (Q == 1): one sequential loop per row."""
    P, T, _ = b.shape
    for p in range(P):
        h = h0[p, 0]
        if reverse:
            for t in range(T - 1, -1, -1):
                h = a[p, t, 0] * h + b[p, t, 0]
                out[p, t, 0] = h
        else:
            for t in range(T):
                h = a[p, t, 0] * h + b[p, t, 0]
                out[p, t, 0] = h


@numba.njit(cache=True, nogil=True)
def _recurrence_columns(a, b, h0, out, reverse):  # pragma: no cover - compiled
    """Time is an outer axis (Q > 1): sequential in t, a vectorizable inner loop over Q."""
    P, T, Q = b.shape
    h = np.empty(Q, dtype=out.dtype)
    for p in range(P):
        for q in range(Q):
            h[q] = h0[p, q]
        for s in range(T):
            t = T - 1 - s if reverse else s
            for q in range(Q):
                h[q] = a[p, t, q] * h[q] + b[p, t, q]
                out[p, t, q] = h[q]


def _recurrence_cpu(a, b, h0, *, reverse=False):
    """numba fast path on canonical arrays ``a, b: (P, T, Q)``, ``h0: (P, Q)``; returns ``h: (P, T, Q)``."""
    dtype = np.result_type(a, b, h0)
    b, h0 = (np.ascontiguousarray(x, dtype=dtype) for x in (b, h0))
    a = np.asarray(a, dtype=dtype)
    if not a.flags.c_contiguous and 0 not in a.strides:
        a = np.ascontiguousarray(a)  # a broadcast decay (zero strides) is read in place, without a copy
    out = np.empty(b.shape, dtype=dtype)
    if out.size:
        (_recurrence_rows if b.shape[2] == 1 else _recurrence_columns)(a, b, h0, out, bool(reverse))
    return out


def _sequential_where_nonfinite(a, b, h0, h, reverse):
    """``h`` ``(P, T, Q)`` with each row ``(p, q)`` that holds inf or NaN recomputed by the sequential loop.

    The parallel paths (reference, CUDA) reassociate the products of ``a``:
    after an overflow to inf that later decays, a composed decay underflows
    to 0 and meets the inf (``0 * inf``: NaN) where the loop carries inf.
    Recomputing those rows of finite inputs (rare; the others are left
    alone) makes every path give the loop's answer.
    """
    xp = array_module(h)
    if h.size == 0:
        return h
    bad = ~xp.isfinite(h).all(axis=1)
    if not bool(bad.any()):
        return h
    # only rows whose inputs are finite: NaN or inf given stays the caller's
    bad &= xp.isfinite(a).all(axis=1) & xp.isfinite(b).all(axis=1) & xp.isfinite(h0)
    if not bool(bad.any()):
        return h
    p, q = xp.nonzero(bad)
    a_rows, b_rows = (xp.broadcast_to(x, h.shape)[p, :, q] for x in (a, b))  # (k, T)
    h0_rows = xp.broadcast_to(h0, (h.shape[0], h.shape[2]))[p, q]
    if xp is np:
        h[p, :, q] = _recurrence_cpu(a_rows[:, :, None], b_rows[:, :, None], h0_rows[:, None], reverse=reverse)[:, :, 0]
        return h
    fixed, state = xp.empty_like(b_rows), h0_rows  # pragma: no cover - CuPy: one small launch per step
    for t in range(h.shape[1] - 1, -1, -1) if reverse else range(h.shape[1]):
        state = a_rows[:, t] * state + b_rows[:, t]
        fixed[:, t] = state
    h[p, :, q] = fixed
    return h


def _fold_h0(a, b, h0, t0, time_axis):
    """``b`` with ``a[t0] * h0`` added at time ``t0``: the recurrence from ``h0`` equals the one from 0 on it."""
    xp = array_module(a, b, h0)
    b = xp.array(b, dtype=xp.result_type(a, b, h0), copy=True)
    index = (slice(None),) * time_axis + (t0,)
    b[index] = a[index] * h0 + b[index]
    return b


def _blelloch_over_time(xp, op, a, b, reverse: bool):
    """Blelloch scan of ``op`` on ``(a, b)`` pairs laid out ``(P, T, ...)``; returns the ``b`` part, ``(P, T, ...)``."""
    leaves = (xp.moveaxis(a, 1, 0), xp.moveaxis(b, 1, 0))
    if reverse:
        leaves = tuple(x[::-1] for x in leaves)
    h = blelloch(op, leaves, True)[1]
    if reverse:
        h = h[::-1]
    return xp.ascontiguousarray(xp.moveaxis(h, 0, 1))


def _recurrence_reference(a, b, h0, *, reverse=False):
    """Blelloch scan of ``ops.affine``; same arguments and result as :func:`_recurrence_cpu`."""
    xp = array_module(a, b, h0)
    T = b.shape[1]
    if T == 0 or b.size == 0:
        return xp.empty(b.shape, dtype=xp.result_type(a, b, h0))
    b = _fold_h0(a, b, h0, T - 1 if reverse else 0, 1)
    return _blelloch_over_time(xp, ops.affine, a, b, reverse)


register(
    "scans.linear_recurrence",
    reference=_recurrence_reference,
    cpu=_recurrence_cpu,
    cuda_source=Path(__file__).with_name("block_scan.cu"),
    cuda_function="scan_affine",
    cuda_launch=gpu.launch_recurrence,
    doc="h[t] = a[t] * h[t-1] + b[t] on (P, T, Q) arrays, h[-1] = h0 (P, Q)",
)


def linear_recurrence(a: Any, b: Any, *, h0: Any = None, axis: int = 0, reverse: bool = False, impl: str | None = None):
    """Solve ``h[t] = a[t] * h[t-1] + b[t]`` along ``axis``, elementwise.

    Parameters
    ----------
    a : array or number
        Decay (multiplier), broadcastable against ``b`` (e.g. ``(D, 1)`` or a
        scalar for a constant decay against ``b`` of shape ``(B, D, L)``).
    b : array
        Input, at least 1-D, with time along ``axis``.
    h0 : array or number, optional
        The state before the first step, broadcastable to the result's shape
        without ``axis`` (``(B, D)`` for ``(B, D, L)`` and ``axis=-1``);
        default 0.
    axis : int
        The time axis (``-1`` for the ``(B, D, L)`` layout of SSMs).
    reverse : bool
        Run backwards in time: ``h[t] = a[t] * h[t+1] + b[t]``, starting from
        ``h0`` after the last step.
    impl : {None, "reference", "cpu", "cuda"}
        Force one implementation (tests, benchmarks); default by the arrays'
        module: the numba loop for NumPy, the CUDA kernel for CuPy
        (float32/float64; complex CuPy arrays use the reference).

    Returns
    -------
    h : array of the broadcast shape of ``a`` and ``b``, dtype the common
        float or complex type (ints compute in float64), on the arrays' device.
        Every ``impl`` gives the sequential loop's answer after an overflow
        (``inf`` stays ``inf`` through later decay): the parallel ones
        recompute the rows where their result is not finite.

    Notes
    -----
    The adjoint (for backpropagation, time along axis 0): with ``g = dL/dh``,
    ``dL/db = linear_recurrence(a_next, g, reverse=True)`` where
    ``a_next[t] = a[t+1]`` (and 0 after the last step), ``dL/da[t] =
    dL/db[t] * h[t-1]`` (``h[-1] = h0``) and ``dL/dh0 = a[0] * dL/db[0]``,
    reduced over broadcast axes. ``tests/scans/test_recurrence.py`` checks
    it against finite differences.

    Examples
    --------
    >>> import numpy as np, scans
    >>> scans.linear_recurrence(np.array([0.5, 0.5, 0.5]), np.array([1.0, 1.0, 1.0]), h0=2.0)
    array([2., 2., 2.])
    """
    xp = array_module(*(x for x in (a, b, h0) if x is not None))
    b_arr = _as_array(xp, b, "b")
    a_arr = _as_array(xp, a, "a")
    if b_arr.ndim == 0:
        raise ValueError("b must have at least one axis (time), got a 0-d array")
    try:
        shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
    except ValueError:
        raise ValueError(f"a of shape {a_arr.shape} does not broadcast against b of shape {b_arr.shape}") from None
    ax = _axis(axis, len(shape))
    dtype = _result_dtype(a if not isinstance(a, (list, tuple)) else a_arr, b_arr, h0)
    state_shape = shape[:ax] + shape[ax + 1 :]
    h0_arr = _initial_state(xp, h0, state_shape, dtype, axis)
    P, T, Q = math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1 :])
    a3, b3 = (_broadcast(xp, x, shape, dtype).reshape(P, T, Q) for x in (a_arr, b_arr))
    h03 = _broadcast(xp, h0_arr, state_shape, dtype).reshape(P, Q)
    if impl is None and xp is not np and dtype.kind == "c":
        impl = "reference"
    h = call("scans.linear_recurrence", a3, b3, h03, impl=impl, reverse=bool(reverse))
    if impl == "reference" or (xp is not np and impl != "cpu"):  # the parallel paths
        h = _sequential_where_nonfinite(a3, b3, h03, h, bool(reverse))
    return h.reshape(shape)


def _fast_affine_scan(a, b):
    """The inclusive ``ops.affine`` scan along axis 0 by the fast path, or ``None`` where it does not apply."""
    xp = array_module(a, b)
    try:
        dtype = _result_dtype(a, b)
    except TypeError:
        return None
    if a.dtype.kind not in "fc" or b.dtype.kind not in "fc" or a.dtype == np.float16 or b.dtype == np.float16:
        return None
    if np.broadcast_shapes(a.shape, b.shape) != b.shape:
        return None
    if xp is not np and dtype.kind == "c":
        return None
    return xp.cumprod(a, axis=0), linear_recurrence(a, b, axis=0)


# ----------------------------------------------------------- matrix kernels


@numba.njit(cache=True, nogil=True)
def _matrix_loop(A, b, h0, out, reverse):  # pragma: no cover - compiled
    P, T, N = b.shape
    h = np.empty(N, dtype=out.dtype)
    new = np.empty(N, dtype=out.dtype)
    for p in range(P):
        for i in range(N):
            h[i] = h0[p, i]
        for s in range(T):
            t = T - 1 - s if reverse else s
            for i in range(N):
                acc = b[p, t, i]
                for j in range(N):
                    acc += A[p, t, i, j] * h[j]
                new[i] = acc
            for i in range(N):
                h[i] = new[i]
                out[p, t, i] = new[i]


def _matrix_cpu(A, b, h0, *, reverse=False):
    """numba loop on canonical ``A: (P, T, N, N)``, ``b: (P, T, N)``, ``h0: (P, N)``; returns ``h: (P, T, N)``."""
    dtype = np.result_type(A, b, h0)
    A, b, h0 = (np.ascontiguousarray(x, dtype=dtype) for x in (A, b, h0))
    out = np.empty(b.shape, dtype=dtype)
    if out.size:
        _matrix_loop(A, b, h0, out, bool(reverse))
    return out


def _matrix_reference(A, b, h0, *, reverse=False):
    """Blelloch scan of ``ops.matrix_affine``; same arguments and result as :func:`_matrix_cpu`."""
    xp = array_module(A, b, h0)
    T = b.shape[1]
    if T == 0 or b.size == 0:
        return xp.empty(b.shape, dtype=xp.result_type(A, b, h0))
    t0 = T - 1 if reverse else 0
    b = xp.array(b, dtype=xp.result_type(A, b, h0), copy=True)
    b[:, t0] += (A[:, t0] @ h0[..., None])[..., 0]
    return _blelloch_over_time(xp, ops.matrix_affine, A, b, reverse)


register(
    "scans.matrix_recurrence",
    reference=_matrix_reference,
    cpu=_matrix_cpu,
    doc="h[t] = A[t] @ h[t-1] + b[t] on A (P, T, N, N), b (P, T, N), h0 (P, N)",
)


def matrix_recurrence(A: Any, b: Any, *, h0: Any = None, axis: int = 0, reverse: bool = False, impl: str | None = None):
    """Solve ``h[t] = A[t] @ h[t-1] + b[t]`` along ``axis``, for small state sizes ``N``.

    Parameters
    ----------
    A : array, shape ``(..., N, N)``
        Transition matrices; the leading axes broadcast against ``b``'s
        leading axes (``b.shape[:-1]``), so one ``(N, N)`` matrix may serve
        every step, or ``(T, N, N)`` one per step.
    b : array, shape ``(..., N)``
        Inputs; the last axis is the state, ``axis`` the time axis.
    h0 : array, optional
        Initial state, broadcastable to the result's shape without ``axis``
        (ending in ``N``); default 0.
    axis : int
        Time axis of ``b`` (any axis but the last). For ``b`` of shape
        ``(B, T, N)`` use ``axis=1`` (or ``-2``).
    reverse : bool
        ``h[t] = A[t] @ h[t+1] + b[t]``, backwards in time.
    impl : {None, "reference", "cpu"}
        Force an implementation; default the numba loop on NumPy, the
        reference (Blelloch scan of ``ops.matrix_affine``) on CuPy.

    Returns
    -------
    h : array of the broadcast shape ``batch + (N,)``.
    """
    xp = array_module(*(x for x in (A, b, h0) if x is not None))
    A_arr = _as_array(xp, A, "A")
    b_arr = _as_array(xp, b, "b")
    if b_arr.ndim < 2:
        raise ValueError(f"b must have a time axis and a state axis (..., N), got shape {b_arr.shape}")
    N = b_arr.shape[-1]
    if A_arr.ndim < 2 or A_arr.shape[-2:] != (N, N):
        raise ValueError(f"A must have shape (..., {N}, {N}) to match b of shape {b_arr.shape}, got {A_arr.shape}")
    try:
        batch = np.broadcast_shapes(A_arr.shape[:-2], b_arr.shape[:-1])
    except ValueError:
        raise ValueError(f"A of shape {A_arr.shape} does not broadcast against b of shape {b_arr.shape}") from None
    shape = batch + (N,)
    ax = _axis(axis, len(shape))
    if ax == len(shape) - 1:
        raise ValueError(f"axis {axis} is the state axis of b; the time axis must be another one")
    dtype = _result_dtype(A_arr, b_arr, h0)
    state_shape = shape[:ax] + shape[ax + 1 :]
    h0_arr = _initial_state(xp, h0, state_shape, dtype, axis)
    # canonical: (other batch axes..., T, N) -> (P, T, N)
    A_full = xp.moveaxis(_broadcast(xp, A_arr, batch + (N, N), dtype), ax, -3)
    b_full = xp.moveaxis(_broadcast(xp, b_arr, shape, dtype), ax, -2)
    other = b_full.shape[:-2]
    P, T = math.prod(other), shape[ax]
    h0_full = _broadcast(xp, h0_arr, state_shape, dtype)
    if impl is None and xp is not np:
        impl = "reference"
    h = call(
        "scans.matrix_recurrence",
        A_full.reshape(P, T, N, N),
        b_full.reshape(P, T, N),
        h0_full.reshape(P, N),
        impl=impl,
        reverse=bool(reverse),
    )
    return xp.moveaxis(h.reshape(other + (T, N)), -2, ax)
