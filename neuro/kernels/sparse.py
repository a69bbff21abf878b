"""Fused sparse ReLU: the activation and its number of nonzero outputs.

``y = x if x > threshold else 0`` elementwise, and ``nnz = count(y != 0)``:
the quantity activation-sparsity studies track, computed in the same pass
as the activation instead of a second sweep over memory.

Implementations (see :mod:`neuro.kernels.registry`):

* reference: two NumPy expressions (works on NumPy and CuPy arrays);
* cpu: one fused pass compiled with numba (``x`` is read once);
* cuda: ``sparse_relu.cu``, a grid-stride loop with a warp-shuffle count.

NaN inputs give NaN outputs (as ``torch.relu``) and count as nonzero.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from ..backend import array_module
from .registry import call, register

__all__ = ["sparse_relu"]



def _check(x, threshold):
    xp = array_module(x)
    if not isinstance(x, xp.ndarray):
        raise TypeError(f"x must be a numpy or cupy ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"x must have a floating dtype, got {x.dtype}")
    if not np.isscalar(threshold) or isinstance(threshold, (bool, complex)):
        raise TypeError(f"threshold must be a real scalar, got {threshold!r}")


def reference(x, threshold=0.0):
    """``(y, nnz)`` with ``y`` the shape and dtype of ``x`` and ``nnz`` a Python int.

    ``threshold`` is first cast to ``x``'s dtype, as the fast paths do (so a
    ``numpy.float64`` threshold on float32 data compares in float32).
    """
    _check(x, threshold)
    xp = array_module(x)
    y = xp.where(x <= x.dtype.type(threshold), xp.zeros((), x.dtype), x)
    return y, int(xp.count_nonzero(y))


@numba.njit(cache=True, nogil=True)
def _sparse_relu_loop(x, y, threshold):
    nnz = 0
    for i in range(x.size):
        v = x[i]
        out = 0.0 if v <= threshold else v  # branch-free select; NaN passes through
        y[i] = out
        nnz += out != 0.0
    return nnz


def cpu(x, threshold=0.0):
    """One fused pass compiled with numba; equal to :func:`reference`."""
    _check(x, threshold)
    flat_x = np.ascontiguousarray(x).reshape(-1)
    y = np.empty_like(flat_x)
    nnz = _sparse_relu_loop(flat_x, y, x.dtype.type(threshold))
    return y.reshape(x.shape), int(nnz)


def _launch(kernel, x, threshold=0.0):
    _check(x, threshold)
    import cupy

    shape = x.shape
    x = cupy.ascontiguousarray(x)  # (1,) for a 0-d x, as numpy.ascontiguousarray
    y = cupy.empty_like(x)
    nnz = cupy.zeros(1, dtype=cupy.uint64)
    n = x.size
    if n:
        threads = 256
        blocks = min((n + threads - 1) // threads, 4096)
        kernel((blocks,), (threads,), (x, y, nnz, np.int64(n), x.dtype.type(threshold)))
    return y.reshape(shape), int(nnz.get()[0])


sparse_relu_kernel = register(
    "sparse_relu",
    reference=reference,
    cpu=cpu,
    cuda_source=Path(__file__).with_name("sparse_relu.cu"),
    cuda_function="sparse_relu",
    cuda_launch=_launch,
    doc="y = x if x > threshold else 0, and count_nonzero(y), in one pass",
)


def sparse_relu(x, threshold: float = 0.0):
    """Fused ReLU with a nonzero count.

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64 (NumPy or CuPy)
    threshold : float
        Outputs are zero where ``x <= threshold`` (Keras's ``threshold``).

    Returns
    -------
    y : ndarray, shape and dtype of ``x``, on the same device
    nnz : int, number of nonzero entries of ``y``
    """
    return call("sparse_relu", x, threshold=threshold)
