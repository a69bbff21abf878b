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
  tanh is :func:`tanh_scalar` (within 3e-16 of ``numpy.tanh``, faster than
  libm's tanh, which dominates the batched step otherwise).

The two differ only by rounding (order of the sums, tanh's last bit):
differences of order 1e-16 per step, which the contracting recurrence
does not amplify.
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.backend import array_module
from neuro.kernels import register

__all__ = ["ACTIVATIONS", "esn_recurrence_cpu", "esn_recurrence_reference", "index_dtype"]

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


def esn_recurrence_reference(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None):
    """States ``(B, T, N)`` of the recurrence; ``drive`` ``(B, T, N)``, ``x0`` ``(B, N)``, ``leak`` in (0, 1].

    ``activation`` is a name in :data:`ACTIVATIONS` or a callable acting
    elementwise on arrays; ``out`` ``(B, T, N)`` may receive the states.
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


_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two (Cody & Waite) for an exact k ln 2
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
#: 2^-k for k = 0 .. 63
_POW2_NEG = np.array([2.0**-k for k in range(64)])


@numba.njit(cache=True, nogil=True, inline="always")
def tanh_scalar(x):
    """``tanh(x)`` to within 3e-16 absolute of ``numpy.tanh``, about twice as fast as libm's in numba.

    ``tanh |x| = (1 - e) / (1 + e)`` with ``e = exp(-2 |x|)``; the exponential by
    range reduction ``-2|x| = k ln 2 + r``, ``|r| <= ln(2) / 2``, a degree-13
    Taylor polynomial for ``exp(r)`` (truncation error < 2e-16) and a table of
    ``2^-k``. ``|x| >= 20`` gives +-1 exactly (as ``numpy.tanh``); NaN gives NaN.
    """
    a = abs(x)
    if not a < 20.0:  # also NaN
        return x if x != x else (1.0 if x > 0 else -1.0)
    y = -2.0 * a
    k = np.floor(y * _INV_LN2 + 0.5)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
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
    e = p * _POW2_NEG[np.int64(-k)]
    t = (1.0 - e) / (1.0 + e)
    return t if x >= 0 else -t


@numba.njit(cache=True, nogil=True, inline="always")
def _act(z, code):
    if code == 1:
        return tanh_scalar(z)
    if code == 2:
        return 1.0 / (1.0 + np.exp(-z))
    return z


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _run_single(indptr, indices, data, drive, x0, leak, code, out):
    # drive (T, N), x0 (N,), out (T, N); row t of out is the state after step t
    T, n = drive.shape
    keep = 1.0 - leak
    x = x0
    for t in range(T):
        y = out[t]
        for i in range(n):
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
            pre = (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + drive[t, i]
            y[i] = keep * x[i] + leak * _act(pre, code)
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
                y[i, b] = keep * x[i, b] + leak * _act(acc[b] + drive[t, i, b], code)
        for b in range(B):
            for i in range(n):
                out[b, t, i] = y[i, b]
        x, y = y, x


def index_dtype(n: int) -> np.dtype:
    """Column-index dtype of the CPU kernels for ``n`` units: unsigned (no negative-index
    wraparound test per load), and 16-bit when it fits (less memory to stream per step)."""
    return np.dtype(np.uint16) if n <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def esn_recurrence_cpu(indptr, indices, data, drive, x0, *, leak=1.0, activation="tanh", out=None):
    """The numba fast path; same contract as :func:`esn_recurrence_reference` (named activations only).

    ``out`` (``(B, T, N)``, C-contiguous, the dtype of ``drive``) may be
    given to write the states in place, e.g. a slice of a larger array.
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
    if drive.shape[0] == 1:
        _run_single(indptr, indices, data, drive[0], x0[0], leak, code, out[0])
    else:
        _run_batch(indptr, indices, data, np.ascontiguousarray(drive.transpose(1, 2, 0)), x0, leak, code, out)
    return out


register(
    "esn_recurrence",
    reference=esn_recurrence_reference,
    cpu=esn_recurrence_cpu,
    doc="leaky reservoir recurrence x[t] = (1-a) x[t-1] + a f(W x[t-1] + d[t]) over (B, T, N) drives",
)
