"""The warning class of ``plasticity`` (private); argument checks are :mod:`neuro.validation`'s."""

from __future__ import annotations

import warnings

__all__ = ["PlasticityWarning", "warn"]


class PlasticityWarning(UserWarning):
    """A legal but probably unstable setting (e.g. ``dt`` larger than a time constant)."""


def warn(message: str) -> None:
    warnings.warn(message, PlasticityWarning, stacklevel=3)
