"""The warning classes of ``reservoirs`` (argument checks: :mod:`neuro.validation`, the toolkit's one module)."""

from __future__ import annotations


__all__ = ["ReservoirWarning", "UnstableReservoirWarning"]


class ReservoirWarning(UserWarning):
    """Base class of the warnings raised by :mod:`reservoirs`."""


class UnstableReservoirWarning(ReservoirWarning):
    """A legal but likely unstable setting, e.g. a spectral radius >= 1."""
