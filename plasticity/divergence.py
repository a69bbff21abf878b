"""Divergence watch: a rule's weights checked for NaN/inf as it learns.

A learning rule with too large a learning rate (or no normalization, e.g.
plain Hebb) runs the weights to infinity, and from there to NaN; NumPy then
only prints ``RuntimeWarning``s. :class:`DivergenceWatch` turns that into a
clear error (``FloatingPointError``) or one :class:`neuro.NonFiniteWarning`,
naming the rule and the update step. ``plasticity.train`` and the
attachments run one.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from neuro.backend import array_module
from neuro.validation import NonFiniteWarning, check_choice, check_int

__all__ = ["DivergenceWatch", "NONFINITE_POLICIES"]

NONFINITE_POLICIES = ("raise", "warn")

#: On a GPU each check is a device-to-host sync: weights on CuPy are checked at most every this many updates.
DEVICE_EVERY = 50


class DivergenceWatch:
    """Check ``W`` after every ``every``-th update of ``rule``.

    ``on_nonfinite``: ``"raise"`` (``FloatingPointError``) or ``"warn"`` (one
    :class:`neuro.NonFiniteWarning`, then no more checks). A check is one
    ``isfinite`` pass over ``W``; attachments that update a few synapses per
    step check less often (``every``), so the step named is the first check
    that saw the damage. CuPy weights are checked at most every
    :data:`DEVICE_EVERY` updates (each check waits for the device).
    """

    def __init__(self, rule: Any, on_nonfinite: str = "raise", every: int = 1):
        self.rule = rule
        self.on_nonfinite = check_choice(on_nonfinite, "on_nonfinite", NONFINITE_POLICIES)
        self.every = check_int(every, "every")
        self.warned = False

    def __call__(self, W: Any, step: int) -> None:
        """After update number ``step`` (1-based) of ``W``."""
        xp = array_module(W)
        every = self.every if xp is np else max(self.every, DEVICE_EVERY)
        if self.warned or step % every:
            return
        bad = ~xp.isfinite(W)
        if not bool(bad.any()):
            return
        message = (f"{type(self.rule).__name__} diverged: the weights hold {int(bad.sum())} NaN or infinite value(s) "
                   f"{'after' if every == 1 else 'by'} update {step} (lower lr, or add a constraint such as "
                   "RowNorm or Clip)")
        if self.on_nonfinite == "warn":
            self.warned = True
            warnings.warn(message, NonFiniteWarning, stacklevel=3)
            return
        raise FloatingPointError(message + "; on_nonfinite='warn' goes on with a warning")
