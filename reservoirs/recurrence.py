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
  weight multiplies a contiguous row of ``B`` states (matrix-matrix).
  the activation is a separate loop over the step's pre-activations so it
  vectorizes; tanh is :func:`tanh_scalar` (within 4e-15 of ``numpy.tanh``;
  libm's scalar tanh was the larger part of a batched step).

The two differ only by rounding (order of the sums, tanh's last bits):
differences of order 1e-15 per step, which the contracting recurrence
does not amplify (tests: 1e-12 between them, 1e-10 against ReservoirPy).
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.backend import array_module
from neuro.kernels import register

__all__ = ["ACTIVATIONS", "esn_recurrence_cpu", "esn_recurrence_reference", "index_dtype", "tanh_scalar"]

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


def _check(indptr, indices, data, drive, x0):
    n = drive.shape[-1]
    if drive.ndim != 3:
        raise ValueError(f"drive must have shape (B, T, N), got {drive.shape}")
    if x0.shape != (drive.shape[0], n):
        raise ValueError(f"x0 must have shape (B, N) = {(drive.shape[0], n)}, got {x0.shape}")
    if indptr.shape != (n + 1,):
        raise ValueError(f"indptr must have shape (N + 1,) = {(n + 1,)}, got {indptr.shape}")
    if indices.shape != data.shape:
        raise ValueError(f"indices and data must have the same shape, got {indices.shape} and {data.shape}")


def esn_recurrence_reference(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None, threads=1):
    """States ``(B, T, N)`` of the recurrence; ``drive`` ``(B, T, N)``, ``x0`` ``(B, N)``, ``leak`` in (0, 1].

    ``activation`` is a name in :data:`ACTIVATIONS` or a callable acting
    elementwise on arrays; ``out`` ``(B, T, N)`` may receive the states;
    ``threads`` is accepted for a common signature and ignored.
    """
    _check(indptr, indices, data, drive, x0)
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
def _row_dot(indptr, indices, data, x, i):
    """Row ``i`` of the CSR matrix times ``x``, with eight independent accumulators (latency hiding)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    a4 = 0.0
    a5 = 0.0
    a6 = 0.0
    a7 = 0.0
    k = indptr[i]
    end = indptr[i + 1]
    while k + 8 <= end:
        a0 += data[k] * x[indices[k]]
        a1 += data[k + 1] * x[indices[k + 1]]
        a2 += data[k + 2] * x[indices[k + 2]]
        a3 += data[k + 3] * x[indices[k + 3]]
        a4 += data[k + 4] * x[indices[k + 4]]
        a5 += data[k + 5] * x[indices[k + 5]]
        a6 += data[k + 6] * x[indices[k + 6]]
        a7 += data[k + 7] * x[indices[k + 7]]
        k += 8
    while k < end:
        a0 += data[k] * x[indices[k]]
        k += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _run_single(indptr, indices, data, drive, x0, leak, code, out):
    # drive (T, N), x0 (N,), out (T, N); row t of out is the state after step t
    T, n = drive.shape
    keep = 1.0 - leak
    x = x0
    for t in range(T):
        y = out[t]
        for i in range(n):
            y[i] = _row_dot(indptr, indices, data, x, i) + drive[t, i]
        _activate(y, x, keep, leak, code)
        x = y


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _run_batch(indptr, indices, data, drive, x0, leak, code, out):
    # drive (T, N, B) (transposed so that the B values of a unit are adjacent), x0 (B, N),
    # out (B, T, N); the state is kept as (N, B)
    T, n, B = drive.shape
    keep = 1.0 - leak
    x = np.ascontiguousarray(x0.T)
    y = np.empty_like(x)
    acc = np.empty(B, dtype=x.dtype)
    for t in range(T):
        for i in range(n):
            for b in range(B):
                acc[b] = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                c = indices[k]
                v = data[k]
                for b in range(B):
                    acc[b] += v * x[c, b]
            for b in range(B):
                y[i, b] = acc[b] + drive[t, i, b]
        _activate(y.reshape(-1), x.reshape(-1), keep, leak, code)
        for b in range(B):
            for i in range(n):
                out[b, t, i] = y[i, b]
        x, y = y, x


@numba.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"})
def _run_single_parallel(indptr, indices, data, drive, x0, leak, code, out):
    # as _run_single, the rows of each step shared among threads (same arithmetic, same result)
    T, n = drive.shape
    keep = 1.0 - leak
    x = x0
    for t in range(T):
        y = out[t]
        for i in numba.prange(n):
            y[i] = _row_dot(indptr, indices, data, x, i) + drive[t, i]
        _activate(y, x, keep, leak, code)
        x = y


@numba.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"})
def _run_batch_parallel(indptr, indices, data, drive, x0, leak, code, out):
    # as _run_batch, rows shared among threads; each row accumulates in its own row of y
    T, n, B = drive.shape
    keep = 1.0 - leak
    x = np.ascontiguousarray(x0.T)
    y = np.empty_like(x)
    for t in range(T):
        for i in numba.prange(n):
            for b in range(B):
                y[i, b] = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                c = indices[k]
                v = data[k]
                for b in range(B):
                    y[i, b] += v * x[c, b]
            for b in range(B):
                y[i, b] += drive[t, i, b]
        _activate(y.reshape(-1), x.reshape(-1), keep, leak, code)
        for b in numba.prange(B):
            for i in range(n):
                out[b, t, i] = y[i, b]
        x, y = y, x


def index_dtype(n: int) -> np.dtype:
    """Column-index dtype of the CPU kernels for ``n`` units: unsigned (no negative-index
    wraparound test per load), and 16-bit when it fits (less memory to stream per step)."""
    return np.dtype(np.uint16) if n <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def esn_recurrence_cpu(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None, threads=1):
    """The numba fast path; same contract as :func:`esn_recurrence_reference` (named activations only).

    ``out`` (``(B, T, N)``, C-contiguous, the dtype of ``drive``) may be
    given to write the states in place, e.g. a slice of a larger array.
    ``threads > 1`` shares the rows of every step among that many threads
    (numba ``prange``; at most ``numba.config.NUMBA_NUM_THREADS``): worth it
    on idle cores (each core's cache then holds part of ``W``), harmful on
    busy ones, hence off by default.
    """
    _check(indptr, indices, data, drive, x0)
    if callable(activation) or activation not in ACTIVATIONS:
        raise ValueError(f"the cpu path needs activation in {sorted(ACTIVATIONS)}, got {activation!r}")
    dtype = drive.dtype
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=index_dtype(drive.shape[-1]))
    data = np.ascontiguousarray(data, dtype=dtype)
    drive = np.ascontiguousarray(drive)
    x0 = np.ascontiguousarray(x0, dtype=dtype)
    if out is None:
        out = np.empty(drive.shape, dtype=dtype)
    elif out.shape != drive.shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {dtype} array of shape {drive.shape}")
    leak = dtype.type(leak)
    code = ACTIVATIONS[activation]
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    threads = min(int(threads), numba.config.NUMBA_NUM_THREADS)
    single, batch = (_run_single, _run_batch) if threads == 1 else (_run_single_parallel, _run_batch_parallel)
    previous = numba.get_num_threads()
    if threads > 1:
        numba.set_num_threads(threads)
    try:
        if drive.shape[0] == 1:
            single(indptr, indices, data, drive[0], x0[0], leak, code, out[0])
        else:
            batch(indptr, indices, data, np.ascontiguousarray(drive.transpose(1, 2, 0)), x0, leak, code, out)
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
