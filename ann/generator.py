"""The default random generator of ``ann`` and :func:`manual_seed`, as PyTorch's.

Everything stochastic in ``ann`` (initializers, layers' initialization, dropout, sampling,
shuffling, the energy models' chains) takes ``seed=`` (an int or a ``numpy.random.Generator``).
Given ``seed=None`` it draws from one default generator, :data:`default_generator`, shared by the
whole package; :func:`manual_seed` reseeds it, so that ::

    ann.manual_seed(0)
    a = ann.nn.Linear(3, 2)   # same weights on every run after manual_seed(0)

repeats, as ``torch.manual_seed`` does for PyTorch. A ``seed=`` given explicitly never touches the
default generator. Deliberate difference: until :func:`manual_seed` is called the default generator
starts from fresh OS entropy (PyTorch starts from a fixed seed), so ``seed=None`` still means
"different every run" by default, as everywhere else in the toolkit.
"""

from __future__ import annotations

import numbers

import numpy as np

from neuro import backend as _backend

__all__ = ["default_generator", "manual_seed", "initial_seed", "make_rng"]

_initial_seed: int = int(np.random.SeedSequence().entropy)
default_generator: np.random.Generator = np.random.default_rng(_initial_seed)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed :data:`default_generator` in place with ``seed`` (a non-negative int) and return it."""
    global _initial_seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    _initial_seed = int(seed)
    default_generator.bit_generator.state = np.random.default_rng(_initial_seed).bit_generator.state
    return default_generator


def initial_seed() -> int:
    """The seed the default generator last started from (``manual_seed``'s, or the initial entropy)."""
    return _initial_seed


def make_rng(seed=None) -> np.random.Generator:
    """:func:`neuro.backend.make_rng`, except that ``seed=None`` gives :data:`default_generator`."""
    if seed is None:
        return default_generator
    return _backend.make_rng(seed)
