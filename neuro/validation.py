"""Warnings and argument checks: the one validation module of the toolkit.

Every package (``neuro``, ``scans``, ``ann``, ``reservoirs``, ``plasticity``,
``experiments``) checks its arguments with these functions, all with one
argument order: ``check_x(value, name, ...)``. Errors are ``ValueError``/``TypeError`` naming the argument and what was
expected; unstable-but-legal settings raise :class:`NeuroWarning`
subclasses (``warnings.warn``), never errors.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import Any

import numpy as np

from .backend import array_module

__all__ = [
    "DtWarning",
    "NeuroWarning",
    "NonFiniteWarning",
    "as_float_array",
    "as_param",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_int",
    "check_memory",
    "check_nonneg",
    "check_optional_positive",
    "check_positive",
    "check_probability",
    "check_real",
    "timestep",
    "warn_dt",
]


class NeuroWarning(UserWarning):
    """Base class of the warnings raised by ``neuro``."""


class DtWarning(NeuroWarning):
    """The time step ``dt`` is larger than a time constant of the model."""


class NonFiniteWarning(NeuroWarning):
    """An input holds NaN or inf (given ``on_nonfinite="warn"``): the results will not be finite."""


#: Accepted values of the ``on_nonfinite`` options.
NONFINITE_POLICIES = ("raise", "warn")


def check_finite(x: Any, name: str, *, on_nonfinite: str | None = None, stacklevel: int = 3) -> None:
    """Reject NaN/inf in the NumPy or CuPy array ``x`` with a ``ValueError`` naming ``name``.

    ``on_nonfinite`` is the caller's option, where it offers one: ``"raise"``
    (the error, which then mentions the option) or ``"warn"`` (a
    :class:`NonFiniteWarning`, and go on); ``None``: always the error.
    """
    if on_nonfinite not in (None, *NONFINITE_POLICIES):
        raise ValueError(f"on_nonfinite must be one of {NONFINITE_POLICIES}, got {on_nonfinite!r}")
    xp = array_module(x)
    if x.dtype.kind not in "fc" or x.size == 0 or bool(xp.isfinite(x).all()):
        return
    message = f"{name} contains {int((~xp.isfinite(x)).sum())} NaN or infinite value(s)"
    if on_nonfinite == "warn":
        warnings.warn(message + "; the results will not be finite", NonFiniteWarning, stacklevel=stacklevel)
        return
    raise ValueError(message + (" (on_nonfinite='warn' goes on with a warning)" if on_nonfinite else ""))


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (``None`` where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(nbytes: float, what: str) -> None:
    """Refuse up front (``ValueError``) an allocation of ``nbytes`` larger than the physical memory.

    ``what`` names the argument(s) that size it, e.g. ``"n=1000000000 (the population's state)"``.
    """
    total = physical_memory()
    if total is not None and nbytes > total:
        raise ValueError(f"{what} needs about {nbytes / 2**30:.1f} GiB, more than this machine's memory "
                         f"({total / 2**30:.1f} GiB)")


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_real(value: Any, name: str) -> float:
    """``value`` as a finite float; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float ``> 0`` (``>= 0`` with ``allow_zero``); an error naming ``name`` otherwise."""
    value = check_real(value, name)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def check_nonneg(value: Any, name: str) -> float:
    """``value`` as a finite float ``>= 0``, or an error naming ``name``."""
    return check_positive(value, name, allow_zero=True)


def check_optional_positive(value: Any, name: str) -> float | None:
    """``None``, or ``value`` as a finite float ``> 0``."""
    return None if value is None else check_positive(value, name)


def check_probability(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1], or an error naming ``name``."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a probability (real number in [0, 1]), got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return float(value)


def check_fraction(value: Any, name: str) -> float:
    """``value`` as a float in (0, 1] (a connectivity, a leak rate), or an error naming ``name``."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number in (0, 1], got {type(value).__name__}")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return float(value)


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool (``numpy.bool_`` too), or ``TypeError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """``value`` if it is one of ``choices``, or ``ValueError`` naming ``name`` and listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def as_float_array(x: Any, name: str, dtype: Any, *, ndims: tuple[int, ...], finite: bool = True):
    """``x`` as a floating array of ``dtype`` (NumPy or CuPy, as given) with ``x.ndim`` in ``ndims``.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong
    number of dimensions or (with ``finite``) NaN/inf entries, naming ``name``.
    """
    xp = array_module(x)
    try:
        arr = xp.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    if arr.ndim not in ndims:
        shapes = " or ".join({1: "(T,)", 2: "(T, F)", 3: "(B, T, F)"}.get(n, f"{n}-d") for n in ndims)
        raise ValueError(f"{name} must have shape {shapes}, got shape {tuple(arr.shape)}")
    if finite and arr.size and not bool(xp.isfinite(arr).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def as_param(value: Any, n: int, name: str, *, dtype=np.float64, positive: bool = False,
             nonneg: bool = False) -> np.ndarray:
    """A per-element parameter as an array of shape ``(n,)``.

    ``value`` is a real scalar (shared) or an array-like of shape ``(n,)``
    (one per element). ``positive``/``nonneg`` add range checks.
    """
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a real scalar or an array of shape ({n},), got {value!r}")
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real scalar or an array of shape ({n},), got {type(value).__name__}") from exc
    if arr.ndim == 0:
        arr = np.full(n, arr, dtype=dtype)
    elif arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got shape {arr.shape}")
    else:
        arr = arr.copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got minimum {arr.min()}")
    if nonneg and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got minimum {arr.min()}")
    return arr


def timestep(t: Any, dt: float) -> np.ndarray:
    """Index of the clock step holding time ``t`` (ms), Brian2's rounding: ``int((t + 1e-3 dt) / dt)``."""
    return np.asarray((np.asarray(t, dtype=np.float64) + 1e-3 * dt) / dt).astype(np.int64)


def warn_dt(dt: float, taus: dict[str, float], *, stacklevel: int = 3) -> None:
    """Warn (:class:`DtWarning`) when ``dt`` exceeds the smallest of ``taus`` (name -> ms)."""
    if not taus:
        return
    name = min(taus, key=taus.get)
    if dt > taus[name]:
        warnings.warn(
            f"dt={dt} ms is larger than the smallest time constant {name}={taus[name]} ms; "
            "the integration is coarse (use a smaller dt)",
            DtWarning,
            stacklevel=stacklevel,
        )
