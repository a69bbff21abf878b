"""The leaky reservoir recurrence, registered as kernel ``esn_recurrence``.

For a batch of ``B`` sequences, with the input drive ``d[b, t] = W_in u[b, t] + bias``
(given, computed beforehand by one matrix product over all steps, or computed by the
kernel from ``u``, ``W_in`` and ``bias``)::

    x[b, t] = (1 - a) x[b, t-1] + a f(W x[b, t-1] + d[b, t]),   x[b, -1] = x0[b]

``W`` is given in CSR form (``indptr``, ``indices``, ``data``; ``(N, N)``,
``post = W @ pre``). Implementations (see :mod:`neuro.kernels.registry`):

* reference: a loop over time written against ``xp`` (NumPy + scipy.sparse,
  or CuPy + cupyx.scipy.sparse), one sparse product per step;
* cpu: numba loops over re-laid-out copies of ``W`` (built per call, O(nnz)),
  with the vector inner loops of :mod:`reservoirs._simd`. A single sequence
  uses sliced ELLPACK (:func:`sliced_ell`): rows sorted by length and cut in
  slices of eight, stored column-major and padded with zero weights, so that
  one vector multiply-add serves eight rows (each row summed in its stored
  order, as the reference). A batch runs in lane blocks of eight sequences
  whose states are kept ``(N, 8)`` (:func:`_lane_block`), over the same
  slices: each stored weight multiplies the eight states of its column (one
  vector), and each unit's sum is the one-sequence sum lane by lane (a
  sequence's states do not depend on the batch). The activation runs over
  contiguous values so it vectorizes; tanh is :func:`tanh_scalar` (within 4e-15 of ``numpy.tanh``;
  libm's scalar tanh was the larger part of a batched step).
  Threads: a batch's lane blocks go to a pool of threads, each taking the
  next block when it has run its last to the end (no barrier between steps,
  and a thread held up by another process takes fewer blocks); a single sequence
  shares each step's slices among the threads (a barrier per step: only on
  request, see :func:`resolve_threads`; serial and threaded versions are
  compiled from one source).

The two differ only by rounding (fused multiply-adds, tanh's last bits):
differences of order 1e-15 per step, which the contracting recurrence
does not amplify (tests: 1e-12 between them, 1e-10 against ReservoirPy).
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.backend import array_module
from neuro.kernels import register

from neuro.validation import check_int

from ._simd import LANES, slice_dot, slice_lanes_dot

__all__ = [
    "ACTIVATIONS", "FUSED_INPUTS", "MIN_GROUP", "PARALLEL_MIN_WORK", "esn_recurrence_cpu", "esn_recurrence_reference",
    "index_dtype", "resolve_threads", "sliced_ell", "tanh_scalar",
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


def _check(indptr, indices, data, drive, x0, out, W_in=None, bias=None):
    n = indptr.shape[0] - 1
    if drive.ndim != 3:
        raise ValueError(f"drive must have shape (B, T, N) (or (B, T, F) with W_in), got {drive.shape}")
    if W_in is None and drive.shape[-1] != n:
        raise ValueError(f"drive must have N = {n} units (indptr has N + 1 entries), got {drive.shape}")
    if W_in is not None and W_in.shape != (n, drive.shape[-1]):
        raise ValueError(f"W_in must have shape (N, F) = {(n, drive.shape[-1])}, got {W_in.shape}")
    if bias is not None and bias.shape != (n,):
        raise ValueError(f"bias must have shape (N,) = {(n,)}, got {bias.shape}")
    if out is not None and out is not drive and array_module(out).may_share_memory(out, drive):
        raise ValueError("out may be drive itself but must not overlap it otherwise")
    if x0.shape != (drive.shape[0], n):
        raise ValueError(f"x0 must have shape (B, N) = {(drive.shape[0], n)}, got {x0.shape}")
    if indices.shape != data.shape:
        raise ValueError(f"indices and data must have the same shape, got {indices.shape} and {data.shape}")


def esn_recurrence_reference(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None, threads=None,
                             W_in=None, bias=None):
    """States ``(B, T, N)`` of the recurrence; ``drive`` ``(B, T, N)``, ``x0`` ``(B, N)``, ``leak`` in (0, 1].

    ``activation`` is a name in :data:`ACTIVATIONS` or a callable acting
    elementwise on arrays; ``out`` ``(B, T, N)`` may receive the states, and
    may be ``drive`` itself (step ``t``'s drive is read before its states
    replace it); ``threads`` is accepted for a common signature and ignored.
    ``bias`` ``(N,)``, optional, is added to every step's drive; with ``W_in``
    ``(N, F)``, ``drive`` holds the inputs ``u`` ``(B, T, F)`` and the drive is
    ``W_in u[b, t] + bias`` (the cpu path computes it step by step instead of
    writing a ``(B, T, N)`` array first).
    """
    _check(indptr, indices, data, drive, x0, out, W_in, bias)
    if W_in is not None:
        drive = drive @ W_in.T
    if bias is not None:
        drive = drive + bias
    xp = array_module(drive, x0, data)
    n = x0.shape[-1]
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


@numba.njit(cache=True, nogil=True)
def _aligned_zeros(rows, dtype):
    """Zeros ``(rows, LANES)`` of ``dtype`` starting on a 64-byte boundary (numba's arrays start on 16).

    With ``LANES`` float64 a row is one cache line: a misaligned row read spans
    two, which made the lane blocks twice as slow.
    """
    buf = np.zeros(rows * LANES + 64, dtype)
    skip = ((-buf.ctypes.data) % 64) // buf.itemsize
    return buf[skip:skip + rows * LANES].reshape((rows, LANES))


@numba.njit(cache=True, nogil=True)
def sliced_ell(indptr, indices, data, n):
    """``W`` ``(n, n)`` (CSR) as sliced ELLPACK with slices of :data:`LANES` rows: ``(start, values, index, rows)``.

    Rows are sorted by decreasing length (stable) and cut in slices of eight;
    slice ``s`` holds rows ``rows[8 s : 8 s + 8]`` (-1: none, past ``n``) in
    ``values[start[s]:start[s + 1]]`` and ``index[...]`` (``(L, 8)``), column
    ``r`` for its row ``r``, entries in CSR order, padded to the slice's
    longest row with weight 0 and column ``n`` (the kernels keep a zero there,
    so the padding adds exactly 0). Sorting makes the padding small (0.2% at
    N = 1000, 10% connectivity).
    """
    lengths = indptr[1:] - indptr[:-1]
    order = np.argsort(-lengths, kind="mergesort")
    n_slices = (n + LANES - 1) // LANES
    rows = np.full(n_slices * LANES, -1, np.int64)
    rows[:n] = order
    start = np.zeros(n_slices + 1, np.int64)
    for s in range(n_slices):
        start[s + 1] = start[s] + lengths[rows[s * LANES]]  # the slice's first row is its longest
    values = _aligned_zeros(start[-1], data.dtype)
    index = np.full((start[-1], LANES), n, indices.dtype)
    for s in range(n_slices):
        for c in range(LANES):
            r = rows[s * LANES + c]
            if r >= 0:
                for k in range(lengths[r]):
                    values[start[s] + k, c] = data[indptr[r] + k]
                    index[start[s] + k, c] = indices[indptr[r] + k]
    return start, values, index, rows


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _unit_drive(drive, W_in, bias, fused, t, i):
    """Unit ``i``'s drive at step ``t`` of one sequence: ``drive[t, i] + bias[i]``, or, ``fused``,
    ``W_in[i] . drive[t] + bias[i]`` (``drive`` ``(T, F)`` holds the inputs)."""
    if fused:
        u = drive[t]
        w = W_in[i]
        acc = u[0] * w[0]
        for f in range(1, u.size):
            acc += u[f] * w[f]
        return acc + bias[i]
    return drive[t, i] + bias[i]


def _single_steps(slices):
    """The single-sequence loop with ``slices`` (``range`` or ``numba.prange``) over the row slices of a step.

    One source, compiled serial and threaded (same arithmetic, same result);
    ``slices`` in the closure also keeps the two apart in numba's on-disk cache,
    whose key ignores compile flags.
    """

    def run(start, values, index, rows, drive, W_in, bias, fused, x0, leak, code, out):
        # (start, values, index, rows) from sliced_ell; drive (T, N), or inputs (T, F) if fused; x0 (N,), out (T, N)
        T, n = out.shape
        keep = 1.0 - leak
        x = np.zeros(n + 1, drive.dtype)  # x[n] stays 0: the padding's column
        x[:n] = x0
        sums = np.empty((start.size - 1, LANES), drive.dtype)
        for t in range(T):
            y = out[t]
            for s in slices(start.size - 1):
                slice_dot(values[start[s]:start[s + 1]], index[start[s]:start[s + 1]], x, sums[s])
                for c in range(LANES):
                    r = rows[s * LANES + c]
                    if r >= 0:  # drive may be out: each unit's drive is read before its state is written
                        y[r] = sums[s, c] + _unit_drive(drive, W_in, bias, fused, t, r)
            _activate(y, x[:n], keep, leak, code)
            x[:n] = y

    return run


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _lane_block(start, values, index, rows, drive, W_in, bias, fused, x0, leak, code, out, b0, b1):
    """Sequences ``b0:b1`` (at most :data:`LANES`), all steps, as one lane block.

    ``(start, values, index, rows)`` from :func:`sliced_ell`. The states are
    kept ``(N + 1, 8)``, lane ``l`` for sequence ``b0 + l`` (lanes past ``b1``
    run on zero drive and are not written out; row ``N`` stays 0: the
    padding's column). Each unit's sum is the one of :func:`_single_steps`,
    lane by lane, so a sequence gets the same states in a batch as alone.
    """
    T, n = out.shape[1], out.shape[2]
    g = b1 - b0
    keep = 1.0 - leak
    x = _aligned_zeros(n + 1, drive.dtype)
    y = _aligned_zeros(n + 1, drive.dtype)
    for b in range(g):
        x[:n, b] = x0[b0 + b]
    sums = _aligned_zeros(LANES, drive.dtype)
    ut = np.zeros((W_in.shape[1], LANES), drive.dtype)  # fused: step t's inputs, lane by lane
    lane = np.empty(LANES, drive.dtype)
    for t in range(T):
        if fused:
            for b in range(g):
                ut[:, b] = drive[b0 + b, t]
        for s in range(start.size - 1):
            slice_lanes_dot(values[start[s]:start[s + 1]], index[start[s]:start[s + 1]], x, sums)
            for c in range(LANES):
                r = rows[s * LANES + c]
                if r < 0:
                    continue
                # read before the pass below writes out (which may be drive)
                if fused:  # as _unit_drive, lane by lane
                    w = W_in[r]
                    for b in range(LANES):
                        lane[b] = ut[0, b] * w[0]
                    for f in range(1, w.size):
                        for b in range(LANES):
                            lane[b] += ut[f, b] * w[f]
                    for b in range(LANES):
                        lane[b] += bias[r]
                else:
                    for b in range(g):
                        lane[b] = drive[b0 + b, t, r] + bias[r]
                    lane[g:] = 0.0
                yr = y[r]
                for b in range(LANES):
                    yr[b] = sums[c, b] + lane[b]
        for i in range(n):
            yi = y[i]
            _activate(yi, x[i], keep, leak, code)
            for b in range(g):
                out[b0 + b, t, i] = yi[b]
        x, y = y, x


_serial = numba.njit(cache=True, nogil=True, fastmath={"contract"})
_threaded = numba.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"})
_run_single, _run_single_parallel = _serial(_single_steps(range)), _threaded(_single_steps(numba.prange))


def index_dtype(n: int) -> np.dtype:
    """Column-index dtype of the CPU kernels for ``n`` units: unsigned, and 16-bit when ``n`` itself fits
    (the sliced format's padding points at column ``n``; less memory to stream per step)."""
    return np.dtype(np.uint16) if n <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


#: Input widths up to which :class:`~reservoirs.ESN` lets the cpu path compute the drive ``W_in u + bias``
#: step by step (``W_in=``): F multiply-adds per unit and step, against about ``nnz / N`` for the
#: recurrent weights; above, one matrix product for all steps writes the drive first.
FUSED_INPUTS = 8

#: Multiply-adds per step (stored weights times batch) from which ``threads=None`` may split a batch.
PARALLEL_MIN_WORK = 1 << 16

#: Sequences per thread below which ``threads=None`` does not split a batch further: a lane block,
#: which costs the same whether it holds one sequence or eight.
MIN_GROUP = LANES


def resolve_threads(threads: int | None, nnz: int, batch: int) -> int:
    """The thread count for ``threads`` (None: automatic), ``nnz`` stored weights and ``batch`` sequences.

    None: one thread for a single sequence; for a batch, one thread per
    :data:`MIN_GROUP` sequences or part of it (a lane block), up to numba's
    thread count, when a step has at least :data:`PARALLEL_MIN_WORK`
    multiply-adds (``nnz * batch``), else one.
    A single sequence shares each step's slices among the threads only when
    ``threads`` asks for it: that needs a barrier per step, and with another
    process busy on a core every barrier waits for the scheduler (measured:
    many times slower than one thread; docs/benchmarks/reservoirs.md).
    An explicit count is capped at numba's.
    """
    if threads is None:
        if batch == 1 or nnz * batch < PARALLEL_MIN_WORK:
            return 1
        return max(1, min(numba.get_num_threads(), -(-batch // MIN_GROUP)))
    return min(check_int(threads, "threads"), numba.get_num_threads())


def _check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype or out.strides[-1] != dtype.itemsize:
        raise ValueError(
            f"out must be a {dtype} array of shape {shape} with contiguous last axis, "
            f"got {out.dtype} {out.shape} with strides {out.strides}"
        )


def esn_recurrence_cpu(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None, threads=None,
                       W_in=None, bias=None):
    """The numba fast path; same contract as :func:`esn_recurrence_reference` (named activations only).

    ``out`` (``(B, T, N)``, the dtype of ``drive``, last axis contiguous)
    may be given to write the states in place, e.g. a slice of a larger array,
    or ``drive`` itself.
    ``threads``: see :func:`resolve_threads` (None: automatic); a batch's
    lane blocks go to that many threads (:func:`_batch`), a single sequence
    shares each step's slices. The states are the same whatever the count.
    With ``W_in``, each unit's drive is computed as it is needed (``F``
    multiply-adds per unit and step), which saves writing and reading a
    ``(B, T, N)`` drive array: worth it for few inputs (see :data:`FUSED_INPUTS`).
    """
    _check(indptr, indices, data, drive, x0, out, W_in, bias)
    if callable(activation) or activation not in ACTIVATIONS:
        raise ValueError(f"the cpu path needs activation in {sorted(ACTIVATIONS)}, got {activation!r}")
    dtype = drive.dtype
    B, T = drive.shape[:2]
    n = indptr.shape[0] - 1
    if out is None:
        out = np.empty((B, T, n), dtype=dtype)
    else:
        _check_out(out, (B, T, n), dtype)
    if out.size == 0:
        return out
    fused = W_in is not None
    if fused and drive.shape[-1] == 0:  # no inputs: the drive is the bias
        fused, drive = False, np.zeros((B, T, n), dtype)
    W_in = np.ascontiguousarray(W_in if fused else np.zeros((n, 0)), dtype=dtype)
    bias = np.zeros(n, dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=index_dtype(n))
    data = np.ascontiguousarray(data, dtype=dtype)
    drive = np.ascontiguousarray(drive)
    x0 = np.ascontiguousarray(x0, dtype=dtype)
    leak = dtype.type(leak)
    code = ACTIVATIONS[activation]
    inputs = (drive, W_in, bias, fused)
    threads = resolve_threads(threads, data.size, B)
    layout = sliced_ell(indptr, indices, data, n)
    if B == 1:
        _single(layout, inputs, x0, leak, code, out, threads)
    else:
        _batch(layout, inputs, x0, leak, code, out, threads)
    return out


def _single(layout, inputs, x0, leak, code, out, threads):
    """One sequence; with ``threads > 1``, each step's slices are shared by numba's threads (a barrier per step)."""
    drive, W_in, bias, fused = inputs
    if threads == 1:
        _run_single(*layout, drive[0], W_in, bias, fused, x0[0], leak, code, out[0])
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _run_single_parallel(*layout, drive[0], W_in, bias, fused, x0[0], leak, code, out[0])
    finally:
        numba.set_num_threads(previous)


def _batch(layout, inputs, x0, leak, code, out, threads):
    """A batch as lane blocks of :data:`LANES` sequences, each run through all steps by one call.

    With ``threads > 1`` a pool of that many threads takes the blocks one at
    a time as each finishes its last (the kernels release the GIL): a thread
    slowed by another process on its core takes fewer blocks, and no thread
    waits for another between steps.
    """
    B = out.shape[0]
    bounds = [(b0, min(B, b0 + LANES)) for b0 in range(0, B, LANES)]

    def block(b):
        _lane_block(*layout, *inputs, x0, leak, code, out, *b)

    if threads == 1 or len(bounds) == 1:
        for b in bounds:
            block(b)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(threads, len(bounds))) as pool:
        list(pool.map(block, bounds))


register(
    "esn_recurrence",
    reference=esn_recurrence_reference,
    cpu=esn_recurrence_cpu,
    doc="leaky reservoir recurrence x[t] = (1-a) x[t-1] + a f(W x[t-1] + d[t]) over (B, T, N) drives",
)
