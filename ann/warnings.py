"""Warnings for unstable but legal settings in ``ann``."""

from __future__ import annotations

__all__ = ["AnnWarning", "NonFiniteLossWarning"]


class AnnWarning(UserWarning):
    """Base class of the warnings ``ann`` emits (unstable but legal settings)."""


class NonFiniteLossWarning(AnnWarning):
    """The training loss became NaN or infinite (learning rate too high, or bad data); training stopped."""
