"""scans: parallel prefix scans and linear recurrences, on NumPy and CuPy.

* :func:`scan` -- the prefix scan of any associative operator (``sequential``,
  ``hillis_steele``, ``blelloch``, or ``auto``: the fastest correct path);
* :mod:`scans.ops` -- built-in operators with their identities (``add``,
  ``mul``, ``maximum``, ``minimum``, ``logaddexp``, ``affine``, ``matmul``,
  ``matrix_affine``) and :class:`Op` to give your own an identity;
* :func:`linear_recurrence` -- ``h[t] = a[t] * h[t-1] + b[t]`` (numba on the
  CPU, a Blelloch block scan on the GPU); :func:`matrix_recurrence` --
  ``h[t] = A[t] @ h[t-1] + b[t]``;
* :func:`count_ops` -- the work (operator applications) an algorithm does.

Importing ``scans`` registers the kernels ``scans.scan_add``,
``scans.linear_recurrence`` and ``scans.matrix_recurrence`` in
:mod:`neuro.kernels`.
"""

from neuro.version import __version__
from . import ops
from .algorithms import OpCount
from .ops import Op
from .recurrence import linear_recurrence, matrix_recurrence
from .scan import ALGORITHM_NAMES, count_ops, scan

__all__ = [
    "ALGORITHM_NAMES",
    "Op",
    "OpCount",
    "count_ops",
    "linear_recurrence",
    "matrix_recurrence",
    "ops",
    "scan",
]
