"""Argument checks shared by the rule specs (private)."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

__all__ = ["PlasticityWarning", "check_positive", "check_nonnegative", "check_optional_positive", "check_choice",
           "check_bool", "check_real", "warn"]


class PlasticityWarning(UserWarning):
    """A legal but probably unstable setting (e.g. ``dt`` larger than a time constant)."""


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_real(name: str, value: Any) -> float:
    """``value`` as a finite float (``TypeError``/``ValueError`` naming ``name`` otherwise)."""
    return _real(name, value)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float ``> 0``."""
    value = _real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` as a float ``>= 0``."""
    value = _real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_optional_positive(name: str, value: Any) -> float | None:
    """``None`` or a float ``> 0``."""
    return None if value is None else check_positive(name, value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def warn(message: str) -> None:
    warnings.warn(message, PlasticityWarning, stacklevel=3)
