"""Argument checks and the warning class shared by the ``reservoirs`` modules."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from neuro.backend import array_module

__all__ = [
    "ReservoirWarning",
    "UnstableReservoirWarning",
    "as_float_array",
    "check_positive",
    "check_probability",
]


class ReservoirWarning(UserWarning):
    """Base class of the warnings raised by :mod:`reservoirs`."""


class UnstableReservoirWarning(ReservoirWarning):
    """A legal but likely unstable setting, e.g. a spectral radius >= 1."""


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float, ``ValueError``/``TypeError`` naming ``name`` unless it is a finite real > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not np.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


def check_probability(value: Any, name: str) -> float:
    """``value`` as a float in (0, 1]; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1], got {type(value).__name__}")
    value = float(value)
    if not (0.0 < value <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


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
