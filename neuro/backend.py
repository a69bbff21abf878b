"""The shared array backend: NumPy by default, CuPy on a GPU.

Code is written once against ``xp`` (the NumPy API) and runs on either::

    xp = array_module(x, w)      # numpy or cupy, by the arrays given
    y = xp.tanh(w @ x)
    y_host = asnumpy(y)          # always a numpy.ndarray

``set_backend("numpy" | "cupy")`` (or the ``NEURO_BACKEND`` environment
variable, read once at import) chooses where *new* arrays are made
(``array_module()`` with no arrays, ``to_device``). CuPy is imported lazily,
only when asked for or when a CuPy array is passed in.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

__all__ = [
    "BACKENDS",
    "DEFAULT_DTYPE",
    "ANN_DTYPE",
    "array_module",
    "asnumpy",
    "cupy_status",
    "get_backend",
    "gpu_available",
    "is_cupy_array",
    "make_rng",
    "resolve_dtype",
    "set_backend",
    "to_device",
    "use_backend",
]

BACKENDS = ("numpy", "cupy")
#: Default dtype of simulators, reservoirs and plasticity.
DEFAULT_DTYPE = np.dtype(np.float64)
#: Default dtype of ``ann`` (as PyTorch).
ANN_DTYPE = np.dtype(np.float32)


def _check_name(name: Any, argument: str) -> str:
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise ValueError(f"{argument} must be one of {BACKENDS}, got {name!r}")
    return name.lower()


# --------------------------------------------------------------------- CuPy


@lru_cache(maxsize=1)
def cupy_status() -> tuple[bool, str]:
    """Whether CuPy is usable here, and why not if it is not.

    Returns ``(True, "CuPy X on <device>")`` or ``(False, reason)``, the
    reason naming what is missing: the ``cupy`` package or a CUDA device.
    The answer is cached (the hardware does not change under a process).
    """
    try:
        import cupy  # noqa: F401  (lazy on purpose)
    except Exception as exc:  # ImportError, or a broken CUDA install
        return False, f"CuPy is not installed or does not import ({exc.__class__.__name__}: {exc}); install the 'gpu' extra"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"CuPy {cupy.__version__} is installed but no CUDA GPU is usable ({exc.__class__.__name__}: {exc})"
    if count < 1:
        return False, f"CuPy {cupy.__version__} is installed but no CUDA GPU is present"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    if isinstance(name, bytes):
        name = name.decode()
    return True, f"CuPy {cupy.__version__} on {name}"


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return cupy_status()[0]


def _cupy():
    ok, reason = cupy_status()
    if not ok:
        raise RuntimeError(f"the 'cupy' backend is not available: {reason}")
    import cupy

    return cupy


def is_cupy_array(x: Any) -> bool:
    """True for a ``cupy.ndarray``, without importing CuPy if it is not loaded."""
    return type(x).__module__.split(".")[0] == "cupy"


# ----------------------------------------------------------------- backend

_backend = "numpy"


def get_backend() -> str:
    """The name of the backend new arrays are made on: ``"numpy"`` or ``"cupy"``."""
    return _backend


def set_backend(name: str) -> None:
    """Make new arrays on ``name`` (``"numpy"`` or ``"cupy"``).

    Raises ``ValueError`` for an unknown name and ``RuntimeError`` (naming
    what is missing) when ``"cupy"`` is asked for without CuPy or a GPU.
    """
    global _backend
    name = _check_name(name, "backend")
    if name == "cupy":
        _cupy()
    _backend = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager form of :func:`set_backend`; restores the previous one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def array_module(*arrays: Any):
    """``cupy`` if any of ``arrays`` is a CuPy array, else ``numpy``.

    With no arrays, the module of the current backend (see
    :func:`set_backend`). Non-array arguments (scalars, ``None``) are ignored.
    """
    if any(is_cupy_array(a) for a in arrays):
        import cupy

        return cupy
    if not arrays and _backend == "cupy":
        return _cupy()
    return np


def asnumpy(x: Any) -> np.ndarray:
    """``x`` as a ``numpy.ndarray`` (copied from the GPU when it is a CuPy array)."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def to_device(x: Any, backend: str | None = None, dtype: Any = None):
    """``x`` as an array of ``backend`` (default: the current backend)."""
    name = get_backend() if backend is None else _check_name(backend, "backend")
    if name == "cupy":
        return _cupy().asarray(x, dtype=dtype)
    return np.asarray(asnumpy(x), dtype=dtype)


# ---------------------------------------------------------- dtypes, seeds


def resolve_dtype(dtype: Any = None, default: Any = DEFAULT_DTYPE) -> np.dtype:
    """A floating ``numpy.dtype`` from ``dtype`` (``None`` gives ``default``).

    Raises ``TypeError`` for anything that is not float16/32/64.
    """
    if dtype is None:
        dtype = default
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a floating dtype such as 'float32' or 'float64', got {dtype!r}") from exc
    if resolved.kind != "f":
        raise TypeError(f"dtype must be a floating dtype such as 'float32' or 'float64', got {resolved}")
    return resolved


def make_rng(seed: int | np.random.Generator | np.random.SeedSequence | None = None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``seed``.

    ``seed`` may be ``None`` (fresh entropy), a non-negative int, a
    ``SeedSequence``, or a ``Generator`` (returned as is, so a caller's
    stream is shared, not copied). Anything else raises ``TypeError``; a
    negative int raises ``ValueError``. The global NumPy random state is
    never used.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be None, a non-negative int or a numpy.random.Generator, got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))


def _init_from_environment() -> None:
    name = os.environ.get("NEURO_BACKEND")
    if name:
        set_backend(_check_name(name, "NEURO_BACKEND"))


_init_from_environment()
