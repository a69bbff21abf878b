"""Kernel registry for hot operations: NumPy reference, CPU fast path, CuPy kernel.

See :mod:`neuro.kernels.registry`. Built-in kernels: ``sparse_relu``
(:mod:`neuro.kernels.sparse`). Packages above register their own kernels
(e.g. ``scans``) when they are imported.
"""

from .registry import DTYPE_SUFFIX, Kernel, available, call, get, names, nvcc_path, register
from .sparse import sparse_relu

__all__ = ["DTYPE_SUFFIX", "Kernel", "available", "call", "get", "names", "nvcc_path", "register", "sparse_relu"]
