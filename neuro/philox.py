"""Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011), one stream on NumPy, numba and CUDA.

A counter-based generator is a keyed bijection: the ``n``-th random number
of a stream is ``philox4x32(counter=n, key)``, computed from nothing but
the counter and the key. So the numbers a trial, a source and a spike see
are fixed by *which* trial, source and spike they belong to, not by the
order in which a program (or a GPU thread) asks for them: a trial run alone
and the same trial in a batch of 32, on the CPU or on the GPU, draw the
same numbers.

The spiking engine's Poisson inputs use one stream per (trial, input
population), keyed by two 32-bit words drawn at ``reset`` from the trial's
generator, and one counter per (input neuron, spike): the ``k``-th
inter-spike interval of neuron ``n`` is made from
``philox4x32((k_lo, k_hi, n, 0), key)``. Intervals are drawn from the
geometric distribution of a per-step Bernoulli trial with probability ``p``
(Brian2's ``PoissonGroup``: a spike in a step with probability
``rate * dt``), so the trains are exactly Bernoulli per step while the cost
is per spike, not per step.

The same arithmetic is written once (:func:`_rounds`) and runs on NumPy
``uint64`` arrays (the reference), on numba scalars (inlined into the
engine's kernels) and as CUDA C in ``philox.cuh`` (the GPU engine).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["philox4x32", "uniform", "geometric_steps", "poisson_isi", "poisson_isi_reference", "stream_keys",
           "NEVER_STEP"]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_TWO_M53 = 2.0 ** -53

#: "no spike ahead": the step given to an input that never spikes (rate 0), far beyond any run
NEVER_STEP = np.int64(1 << 62)


@numba.njit(cache=True)
def _rounds(c0, c1, c2, c3, k0, k1):
    """Ten Philox rounds on 32-bit words held in ``uint64`` (scalars or arrays alike)."""
    for r in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


def philox4x32(counter, key) -> np.ndarray:
    """Philox4x32-10 of ``counter`` (..., 4) under ``key`` (..., 2): (..., 4) ``uint32`` (NumPy reference).

    Words are unsigned 32-bit integers (any integer dtype, values in
    ``[0, 2**32)``); the result equals Random123's ``philox4x32`` (its
    known-answer vectors are in the tests).
    """
    c = np.asarray(counter)
    k = np.asarray(key)
    for name, arr, width in (("counter", c, 4), ("key", k, 2)):
        if arr.shape[-1:] != (width,) or arr.dtype.kind not in "iu":
            raise ValueError(f"{name} must be an integer array of shape (..., {width}), got {arr.dtype} {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
            raise ValueError(f"{name} words must be in [0, 2**32)")
    c = c.astype(np.uint64)
    k = k.astype(np.uint64)
    out = _rounds.py_func(c[..., 0], c[..., 1], c[..., 2], c[..., 3], k[..., 0], k[..., 1])
    return np.stack(out, axis=-1).astype(np.uint32)


@numba.njit(cache=True)
def _unit(x0, x1):
    """A float64 in (0, 1] from two 32-bit words: ``1 - m 2**-53``, ``m`` their top 53 bits."""
    return 1.0 - (((x0 << _S32) | x1) >> _S11) * _TWO_M53  # the 53-bit integer converts exactly


def uniform(counter, key) -> np.ndarray:
    """Uniform float64 numbers in (0, 1], one per counter (from words 0 and 1 of Philox), NumPy reference."""
    x = philox4x32(counter, key).astype(np.uint64)
    return _unit.py_func(x[..., 0], x[..., 1])


@numba.njit(cache=True)
def geometric_steps(u, log_q):
    """Steps to the next success of a Bernoulli trial per step: ``1 + floor(log(u) / log_q)``.

    ``u`` in (0, 1]; ``log_q = log(1 - p)`` (< 0; ``-inf`` for ``p = 1``).
    The result is >= 1, clipped to :data:`NEVER_STEP`. For ``p = 0`` give
    ``log_q = 0``: the result is :data:`NEVER_STEP`.
    """
    if log_q == 0.0:
        return NEVER_STEP
    k = math.floor(math.log(u) / log_q)
    if k >= 4.0e18:
        return NEVER_STEP
    return np.int64(k) + 1


@numba.njit(cache=True)
def poisson_isi(k0, k1, neuron, draw, log_q):
    """The ``draw``-th inter-spike interval (steps, >= 1) of input ``neuron`` in the stream keyed ``(k0, k1)``."""
    d = np.uint64(draw)
    x0, x1, _, _ = _rounds(d & _MASK, d >> _S32, np.uint64(neuron), np.uint64(0), np.uint64(k0), np.uint64(k1))
    return geometric_steps(_unit(x0, x1), log_q)


def poisson_isi_reference(key, neuron, draw, log_q) -> np.ndarray:
    """:func:`poisson_isi` on NumPy arrays (broadcast): ``key`` (..., 2), the rest (...); int64 steps."""
    key = np.asarray(key, dtype=np.uint64)
    neuron, draw = np.asarray(neuron, dtype=np.uint64), np.asarray(draw, dtype=np.uint64)
    log_q = np.asarray(log_q, dtype=np.float64)
    x0, x1, _, _ = _rounds.py_func(draw & _MASK, draw >> _S32, neuron, np.zeros_like(neuron), key[..., 0], key[..., 1])
    u = _unit.py_func(x0, x1)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(np.log(u) / np.where(log_q == 0.0, -1.0, log_q))
    k = np.minimum(k, 4.0e18)
    out = np.where(k >= 4.0e18, NEVER_STEP, k.astype(np.int64) + 1)
    return np.where(log_q == 0.0, NEVER_STEP, out).astype(np.int64)


def stream_keys(rngs) -> np.ndarray:
    """One Philox key per generator: (len(rngs), 2) ``uint64`` words in [0, 2**32), drawn from each."""
    return np.array([rng.integers(0, 1 << 32, size=2, dtype=np.uint64) for rng in rngs], dtype=np.uint64).reshape(-1, 2)
