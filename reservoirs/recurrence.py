"""The leaky reservoir recurrence, registered as kernel ``esn_recurrence``.

For a batch of ``B`` sequences, with the input drive ``d[b, t] = W_in u[b, t] + bias``
computed beforehand (one matrix product over all steps)::

    x[b, t] = (1 - a) x[b, t-1] + a f(W x[b, t-1] + d[b, t]),   x[b, -1] = x0[b]

``W`` is given in CSR form (``indptr``, ``indices``, ``data``; ``(N, N)``,
``post = W @ pre``). Implementations (see :mod:`neuro.kernels.registry`):

* reference: a loop over time written against ``xp`` (NumPy + scipy.sparse,
  or CuPy + cupyx.scipy.sparse), one sparse product per step;
* cpu: numba loops over the CSR arrays; a single sequence uses eight
  independent accumulators per row (the reduction is latency-bound
  otherwise), a batch keeps the state as ``(N, B)`` so that each stored
  weight multiplies a contiguous row of ``B`` states (matrix-matrix);
  the activation runs over contiguous values (a step's units, or a row's
  ``B`` states) so it vectorizes; tanh is :func:`tanh_scalar` (within 4e-15
  of ``numpy.tanh``; libm's scalar tanh was the larger part of a batched step).
  Threads: a batch is split into one group of sequences per thread, each
  group run to the end on its own (no barrier between steps, so a thread
  held up by another process delays only its own group); a single sequence
  shares each step's rows among the threads (a barrier per step: only on
  request, see :func:`resolve_threads`). Serial and threaded versions are
  compiled from one source.

The two differ only by rounding (order of the sums, tanh's last bits):
differences of order 1e-15 per step, which the contracting recurrence
does not amplify (tests: 1e-12 between them, 1e-10 against ReservoirPy).
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.backend import array_module
from neuro.kernels import register

from neuro.validation import check_int

__all__ = [
    "ACTIVATIONS", "MIN_GROUP", "PARALLEL_MIN_WORK", "esn_recurrence_cpu", "esn_recurrence_reference", "index_dtype",
    "resolve_threads", "tanh_scalar",
]

#: Activation names understood by the kernels, and their codes in the numba loops.
ACTIVATIONS = {"identity": 0, "tanh": 1, "sigmoid": 2}


def _apply(xp, name, z):
    if name == "tanh":
        return xp.tanh(z)
    if name == "identity":
        return z
    if name == "sigmoid":
        return 1.0 / (1.0 + xp.exp(-z))
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


def _check(indptr, indices, data, drive, x0, out):
    n = drive.shape[-1]
    if out is not None and out is not drive and array_module(out).may_share_memory(out, drive):
        raise ValueError("out may be drive itself but must not overlap it otherwise")
    if drive.ndim != 3:
        raise ValueError(f"drive must have shape (B, T, N), got {drive.shape}")
    if x0.shape != (drive.shape[0], n):
        raise ValueError(f"x0 must have shape (B, N) = {(drive.shape[0], n)}, got {x0.shape}")
    if indptr.shape != (n + 1,):
        raise ValueError(f"indptr must have shape (N + 1,) = {(n + 1,)}, got {indptr.shape}")
    if indices.shape != data.shape:
        raise ValueError(f"indices and data must have the same shape, got {indices.shape} and {data.shape}")


def esn_recurrence_reference(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None, threads=None):
    """States ``(B, T, N)`` of the recurrence; ``drive`` ``(B, T, N)``, ``x0`` ``(B, N)``, ``leak`` in (0, 1].

    ``activation`` is a name in :data:`ACTIVATIONS` or a callable acting
    elementwise on arrays; ``out`` ``(B, T, N)`` may receive the states, and
    may be ``drive`` itself (step ``t``'s drive is read before its states
    replace it); ``threads`` is accepted for a common signature and ignored.
    """
    _check(indptr, indices, data, drive, x0, out)
    xp = array_module(drive, x0, data)
    n = drive.shape[-1]
    if xp is np:
        import scipy.sparse as sparse
    else:  # pragma: no cover - needs a GPU
        import cupyx.scipy.sparse as sparse
    W = sparse.csr_matrix((data, indices, indptr), shape=(n, n))
    f = activation if callable(activation) else (lambda z: _apply(xp, activation, z))
    B, T, _ = drive.shape
    if out is None:
        out = xp.empty(drive.shape, dtype=drive.dtype)
    x = x0.T.copy()  # (N, B): post = W @ pre column by column
    for t in range(T):
        pre = W @ x + drive[:, t, :].T
        x = (1.0 - leak) * x + leak * f(pre)
        out[:, t, :] = x.T
    return out


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def tanh_scalar(x):
    """``tanh(x)`` within 4e-15 (absolute) of ``numpy.tanh``, branch- and division-free so loops vectorize.

    ``tanh |x| = (1 - e) / (1 + e)`` with ``e = exp(-2 |x|)`` for ``|x| <= 20``
    (beyond, ``e < 5e-18`` and the result rounds to +-1 as ``numpy.tanh``'s):
    ``exp(-2|x|) = exp(-|x| / 32)^64``, a degree-15 Taylor polynomial
    (truncation < 3e-17 on ``[-0.625, 0]``) squared six times; ``1 / (1 + e)``
    by four Newton steps from a linear first guess (error 1/17, then < 1e-19).
    ``numpy.tanh`` is SIMD-vectorized; libm's tanh in numba is not, and was
    the larger part of a batched reservoir step.
    """
    a = x if x >= 0 else -x
    a = a if a < 20.0 else 20.0
    r = a * -0.03125
    p = 1.0 / 1307674368000.0
    p = p * r + 1.0 / 87178291200.0
    p = p * r + 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    e = p * p  # exp(-2a), in (0, 1]
    h = 0.5 + 0.5 * e  # (1 + e) / 2, in (0.5, 1]
    y = 2.8235294117647056 - 1.8823529411764706 * h  # 48/17 - 32/17 h ~ 1/h
    y = y * (2.0 - h * y)
    y = y * (2.0 - h * y)
    y = y * (2.0 - h * y)
    y = y * (2.0 - h * y)
    t = (1.0 - e) * 0.5 * y
    return t if x >= 0 else -t


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _activate(y, x, keep, leak, code):
    # y <- keep * x + leak * f(y), elementwise over 1-D arrays; one loop per activation so each vectorizes
    if code == 1:
        for i in range(y.shape[0]):
            y[i] = keep * x[i] + leak * tanh_scalar(y[i])
    elif code == 2:
        for i in range(y.shape[0]):
            y[i] = keep * x[i] + leak * (1.0 / (1.0 + np.exp(-y[i])))
    else:
        for i in range(y.shape[0]):
            y[i] = keep * x[i] + leak * y[i]


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _row(indptr, indices, data, i):
    """Stored weights and column indices of row ``i``, as views indexed from 0.

    Indexing from a ``range`` that starts at 0 lets LLVM drop numba's
    negative-index wraparound test, which indexing by ``indptr``'s signed
    offsets paid on every load (a third of the single-sequence step).
    """
    start = indptr[i]
    stop = indptr[i + 1]
    return data[start:stop], indices[start:stop]


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _row_dot(indptr, indices, data, x, i):
    """Row ``i`` of the CSR matrix times ``x``, with eight independent accumulators (latency hiding)."""
    d, ix = _row(indptr, indices, data, i)
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = d.dtype.type(0)
    whole = d.size - d.size % 8
    for k in range(0, whole, 8):
        a0 += d[k] * x[ix[k]]
        a1 += d[k + 1] * x[ix[k + 1]]
        a2 += d[k + 2] * x[ix[k + 2]]
        a3 += d[k + 3] * x[ix[k + 3]]
        a4 += d[k + 4] * x[ix[k + 4]]
        a5 += d[k + 5] * x[ix[k + 5]]
        a6 += d[k + 6] * x[ix[k + 6]]
        a7 += d[k + 7] * x[ix[k + 7]]
    for k in range(whole, d.size):
        a0 += d[k] * x[ix[k]]
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _row_times_states(indptr, indices, data, x, i, start, out):
    """``out (B,) = start (B,) + row i of W @ x``, ``x (N, B)``: each stored weight scales a contiguous row of ``x``.

    Two weights per pass over ``out`` halve its loads and stores.
    """
    d, ix = _row(indptr, indices, data, i)
    out[:] = start
    whole = d.size - d.size % 2
    for k in range(0, whole, 2):
        v0, v1 = d[k], d[k + 1]
        x0, x1 = x[ix[k]], x[ix[k + 1]]
        for b in range(out.size):
            out[b] += v0 * x0[b] + v1 * x1[b]
    if whole < d.size:
        v, xr = d[whole], x[ix[whole]]
        for b in range(out.size):
            out[b] += v * xr[b]


def _single_steps(rows):
    """The single-sequence loop with ``rows`` (``range`` or ``numba.prange``) over the units of a step.

    One source, compiled serial and threaded (same arithmetic, same result);
    ``rows`` in the closure also keeps the two apart in numba's on-disk cache,
    whose key ignores compile flags.
    """

    def run(indptr, indices, data, drive, x0, leak, code, out):
        # drive (T, N), x0 (N,), out (T, N); row t of out is the state after step t
        T, n = drive.shape
        keep = 1.0 - leak
        x = x0
        for t in range(T):
            y = out[t]
            for i in rows(n):
                y[i] = _row_dot(indptr, indices, data, x, i) + drive[t, i]
            _activate(y, x, keep, leak, code)
            x = y

    return run


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _batch_group(indptr, indices, data, drive, x0, leak, code, out, b0, b1):
    """Sequences ``b0:b1`` of the batch, all steps; the group's state is kept as ``(N, b1 - b0)``."""
    T, n = drive.shape[1], drive.shape[2]
    keep = 1.0 - leak
    x = np.ascontiguousarray(x0[b0:b1].T)
    y = np.empty_like(x)
    for t in range(T):
        for i in range(n):  # row i of the new state, activated while in cache
            _row_times_states(indptr, indices, data, x, i, drive[b0:b1, t, i], y[i])
            _activate(y[i], x[i], keep, leak, code)
        for b in range(b1 - b0):
            o = out[b0 + b, t]
            for i in range(n):
                o[i] = y[i, b]
        x, y = y, x


def _batch_steps(groups):
    """The batched loop, as :func:`_single_steps`, with ``groups`` over groups of sequences.

    Group ``g`` holds sequences ``bounds[g]:bounds[g + 1]``; a sequence's
    arithmetic does not depend on its group, so the states are the same
    whatever the grouping.
    """

    def run(indptr, indices, data, drive, x0, leak, code, out, bounds):
        # drive (B, T, N), x0 (B, N), out (B, T, N), bounds (G + 1,)
        for g in groups(bounds.size - 1):
            _batch_group(indptr, indices, data, drive, x0, leak, code, out, bounds[g], bounds[g + 1])

    return run


_serial = numba.njit(cache=True, nogil=True, fastmath={"contract"})
_threaded = numba.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"})
_run_single, _run_single_parallel = _serial(_single_steps(range)), _threaded(_single_steps(numba.prange))
_run_batch, _run_batch_parallel = _serial(_batch_steps(range)), _threaded(_batch_steps(numba.prange))


def index_dtype(n: int) -> np.dtype:
    """Column-index dtype of the CPU kernels for ``n`` units: unsigned (no negative-index
    wraparound test per load), and 16-bit when it fits (less memory to stream per step)."""
    return np.dtype(np.uint16) if n <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


#: Multiply-adds per step (stored weights times batch) from which ``threads=None`` may split a batch.
PARALLEL_MIN_WORK = 1 << 16

#: Sequences per thread below which ``threads=None`` does not split a batch further: a group of B
#: sequences costs more per sequence the smaller B is (measured at N = 1000: 1.15x at B = 16,
#: 1.75x at B = 8, relative to B = 32), and on cores shared with other processes the extra work
#: can outweigh the extra threads.
MIN_GROUP = 16


def resolve_threads(threads: int | None, nnz: int, batch: int) -> int:
    """The thread count for ``threads`` (None: automatic), ``nnz`` stored weights and ``batch`` sequences.

    None: one thread for a single sequence; for a batch, one thread per
    :data:`MIN_GROUP` sequences, up to numba's thread count, when a step has at
    least :data:`PARALLEL_MIN_WORK` multiply-adds (``nnz * batch``), else one.
    A single sequence shares each step's rows among the threads only when
    ``threads`` asks for it: that needs a barrier per step, and with another
    process busy on a core every barrier waits for the scheduler (measured:
    many times slower than one thread; docs/benchmarks/reservoirs.md).
    An explicit count is capped at numba's.
    """
    if threads is None:
        if batch == 1 or nnz * batch < PARALLEL_MIN_WORK:
            return 1
        return max(1, min(numba.get_num_threads(), batch // MIN_GROUP))
    return min(check_int(threads, "threads"), numba.get_num_threads())


def _check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype or out.strides[-1] != dtype.itemsize:
        raise ValueError(
            f"out must be a {dtype} array of shape {shape} with contiguous last axis, "
            f"got {out.dtype} {out.shape} with strides {out.strides}"
        )


def esn_recurrence_cpu(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None, threads=None):
    """The numba fast path; same contract as :func:`esn_recurrence_reference` (named activations only).

    ``out`` (``(B, T, N)``, the dtype of ``drive``, last axis contiguous)
    may be given to write the states in place, e.g. a slice of a larger array,
    or ``drive`` itself.
    ``threads``: see :func:`resolve_threads` (None: automatic); a batch runs
    one group of sequences per thread, a single sequence shares each step's
    rows. The states are the same whatever the count.
    """
    _check(indptr, indices, data, drive, x0, out)
    if callable(activation) or activation not in ACTIVATIONS:
        raise ValueError(f"the cpu path needs activation in {sorted(ACTIVATIONS)}, got {activation!r}")
    dtype = drive.dtype
    if out is None:
        out = np.empty(drive.shape, dtype=dtype)
    else:
        _check_out(out, drive.shape, dtype)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=index_dtype(drive.shape[-1]))
    data = np.ascontiguousarray(data, dtype=dtype)
    drive = np.ascontiguousarray(drive)
    x0 = np.ascontiguousarray(x0, dtype=dtype)
    leak = dtype.type(leak)
    code = ACTIVATIONS[activation]
    B = drive.shape[0]
    threads = resolve_threads(threads, data.size, B)
    previous = numba.get_num_threads()
    if threads > 1:
        numba.set_num_threads(threads)
    try:
        if B == 1:
            single = _run_single if threads == 1 else _run_single_parallel
            single(indptr, indices, data, drive[0], x0[0], leak, code, out[0])
        else:
            groups = min(threads, B)
            bounds = np.linspace(0, B, groups + 1).round().astype(np.int64)  # as even as can be
            (_run_batch if groups == 1 else _run_batch_parallel)(indptr, indices, data, drive, x0, leak, code, out, bounds)
    finally:
        if threads > 1:
            numba.set_num_threads(previous)
    return out


register(
    "esn_recurrence",
    reference=esn_recurrence_reference,
    cpu=esn_recurrence_cpu,
    doc="leaky reservoir recurrence x[t] = (1-a) x[t-1] + a f(W x[t-1] + d[t]) over (B, T, N) drives",
)
