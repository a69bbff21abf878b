"""Connectivity generators: which presynaptic neuron reaches which postsynaptic one.

Every generator returns ``(i, j)``: two int64 arrays of the same length, the
presynaptic and postsynaptic indices of each synapse, sorted by ``i`` (then
``j``), ready for CSR storage by presynaptic neuron. Every one takes
``seed=`` (int or ``numpy.random.Generator``).

* :func:`fixed_probability`: each pair independently with probability ``p``;
* :func:`fixed_indegree`: each postsynaptic neuron gets exactly ``k`` distinct inputs;
* :func:`distance_probability`: pair ``(a, b)`` with probability
  ``C exp(-(D(a, b) / lambda)^2)``, ``D`` the Euclidean distance of their
  positions (see :func:`grid_positions` for a 3-D grid), and
  :func:`typed_distance_probability` with ``C`` depending on the types of
  the two neurons (E->E, E->I, I->E, I->I, as in Maass et al. 2002).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .backend import make_rng
from .validation import check_positive, check_probability

__all__ = [
    "distance_probability",
    "fixed_indegree",
    "fixed_probability",
    "grid_positions",
    "typed_distance_probability",
]

_CHUNK = 1 << 22  # pairs drawn per block, bounds the memory of dense draws


def _check_n(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return int(n)


def _bernoulli_pairs(prob_rows, n_pre: int, n_post: int, rng, exclude_diagonal: bool):
    """Draw pairs row block by row block; ``prob_rows(lo, hi)`` gives the (hi-lo, n_post) probabilities."""
    rows = max(1, _CHUNK // max(n_post, 1))
    pre_parts, post_parts = [], []
    for lo in range(0, n_pre, rows):
        hi = min(n_pre, lo + rows)
        p = prob_rows(lo, hi)
        mask = rng.random((hi - lo, n_post)) < p
        if exclude_diagonal:
            d = np.arange(lo, min(hi, n_post))
            mask[d - lo, d] = False
        i, j = np.nonzero(mask)
        pre_parts.append(i + lo)
        post_parts.append(j)
    if not pre_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pre_parts).astype(np.int64), np.concatenate(post_parts).astype(np.int64)


def fixed_probability(n_pre: int, n_post: int, p: float, *, autapses: bool = True, seed=None):
    """Each pair ``(i, j)`` connected independently with probability ``p``.

    ``autapses=False`` excludes ``i == j`` (for a population onto itself).
    Returns ``(i, j)``, int64 arrays sorted by ``i``.
    """
    n_pre, n_post = _check_n(n_pre, "n_pre"), _check_n(n_post, "n_post")
    p = check_probability(p, "p")
    rng = make_rng(seed)
    return _bernoulli_pairs(lambda lo, hi: p, n_pre, n_post, rng, not autapses)


def fixed_indegree(n_pre: int, n_post: int, k: int, *, autapses: bool = True, seed=None):
    """Each postsynaptic neuron receives exactly ``k`` distinct presynaptic inputs, chosen uniformly.

    Returns ``(i, j)`` sorted by ``i``; ``ValueError`` if ``k`` exceeds the candidates.
    """
    n_pre, n_post = _check_n(n_pre, "n_pre"), _check_n(n_post, "n_post")
    k = _check_n(k, "k")
    candidates = n_pre - (0 if autapses else 1)
    if k > candidates:
        raise ValueError(f"k={k} exceeds the {candidates} available presynaptic neurons")
    rng = make_rng(seed)
    pre = np.empty((n_post, k), np.int64)
    for j in range(n_post):
        if autapses:
            pre[j] = rng.choice(n_pre, size=k, replace=False)
        else:
            choice = rng.choice(n_pre - 1, size=k, replace=False)
            pre[j] = choice + (choice >= j)  # skip j itself
    i = pre.reshape(-1)
    j = np.repeat(np.arange(n_post, dtype=np.int64), k)
    order = np.lexsort((j, i))
    return i[order], j[order]


def grid_positions(shape=(15, 3, 3), spacing: float = 1.0, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Positions (n, 3) of the points of a 3-D grid of ``shape``, C order (last axis fastest)."""
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape):
        raise ValueError(f"shape must be three positive ints, got {shape!r}")
    spacing = check_positive(spacing, "spacing")
    axes = [np.arange(s, dtype=np.float64) * spacing + o for s, o in zip(shape, origin)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _check_positions(pos, name):
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] not in (1, 2, 3):
        raise ValueError(f"{name} must have shape (n, 3) (or (n, 1), (n, 2)), got {pos.shape}")
    return pos


def _distances(pos_pre, pos_post, lo, hi):
    diff = pos_pre[lo:hi, None, :] - pos_post[None, :, :]
    return np.sqrt(np.sum(diff * diff, axis=-1))


def distance_probability(pos_pre, pos_post, C: float, lam: float, *, autapses: bool = True, seed=None):
    """Pair ``(a, b)`` connected with probability ``C exp(-(D(a, b)/lam)^2)``.

    ``pos_pre`` (n_pre, 3), ``pos_post`` (n_post, 3): positions (any length
    unit, the unit of ``lam``). ``autapses=False`` excludes ``a == b`` (same
    population). Returns ``(i, j)`` sorted by ``i``.
    """
    pos_pre, pos_post = _check_positions(pos_pre, "pos_pre"), _check_positions(pos_post, "pos_post")
    C = check_probability(C, "C")
    lam = check_positive(lam, "lam")
    rng = make_rng(seed)
    return _bernoulli_pairs(lambda lo, hi: C * np.exp(-(_distances(pos_pre, pos_post, lo, hi) / lam) ** 2),
                            len(pos_pre), len(pos_post), rng, not autapses)


def typed_distance_probability(positions, types, C: dict, lam: float, *, autapses: bool = False, seed=None):
    """Distance-dependent connectivity within one population of typed neurons.

    ``positions`` (n, 3); ``types`` (n,) labels (e.g. ``"E"``/``"I"``);
    ``C`` maps ``(type_pre, type_post)`` to the scale of that pair, e.g.
    ``{("E", "E"): 0.3, ("E", "I"): 0.2, ("I", "E"): 0.4, ("I", "I"): 0.1}``
    (missing pairs are not connected). Probability of ``a -> b``:
    ``C[type_a, type_b] exp(-(D(a, b)/lam)^2)``. Returns ``(i, j)`` sorted by ``i``.
    """
    positions = _check_positions(positions, "positions")
    types = np.asarray(types)
    if types.shape != (len(positions),):
        raise ValueError(f"types must have shape ({len(positions)},), got {types.shape}")
    if not isinstance(C, dict):
        raise TypeError(f"C must be a dict mapping (type_pre, type_post) to a probability, got {type(C).__name__}")
    labels = np.unique(types)
    codes = np.searchsorted(labels, types)
    table = np.zeros((len(labels), len(labels)))
    for key, value in C.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"C keys must be (type_pre, type_post) pairs, got {key!r}")
        a, b = (np.searchsorted(labels, k) for k in key)
        if a >= len(labels) or labels[a] != key[0] or b >= len(labels) or labels[b] != key[1]:
            continue  # a type that no neuron has
        table[a, b] = check_probability(value, f"C[{key!r}]")
    lam = check_positive(lam, "lam")
    rng = make_rng(seed)

    def prob(lo, hi):
        return table[codes[lo:hi, None], codes[None, :]] * np.exp(-(_distances(positions, positions, lo, hi) / lam) ** 2)

    return _bernoulli_pairs(prob, len(positions), len(positions), rng, not autapses)
