"""Kernel registry for hot operations: NumPy reference, CPU fast path, CuPy kernel.

See :mod:`neuro.kernels.registry`. Built-in kernels: ``sparse_relu``
(:mod:`neuro.kernels.sparse`) and ``gather_matmul`` (:mod:`neuro.kernels.gather_matmul`). Packages above register their own kernels
(e.g. ``scans``) when they are imported.
"""

from .registry import DTYPE_SUFFIX, Kernel, available, call, get, names, nvcc_path, register
from .gather_matmul import gather_matmul
from .sparse import sparse_relu

__all__ = ["DTYPE_SUFFIX", "Kernel", "available", "call", "get", "names", "nvcc_path", "register", "sparse_relu", "gather_matmul"]
