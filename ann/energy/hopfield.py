r"""Hopfield memories: the classical binary network and the modern dense (continuous) one.

Classical (Hopfield 1982), units :math:`s \in \{-1, +1\}^N`, Hebbian outer-product storage of
patterns :math:`\xi^\mu` (rows of ``patterns`` ``(P, N)``):

.. math::
    W = \frac{1}{N} \sum_\mu \xi^\mu (\xi^\mu)^T,\ W_{ii} = 0, \qquad
    E(s) = -\tfrac12 s^T W s, \qquad s_i \leftarrow \mathrm{sign}(W_i s)

(ties go to +1, a tie being a field within rounding of 0, so that the result does not
depend on the summation order). Updating one unit at a time (asynchronous) never raises :math:`E`, so recall
ends at a fixed point; random patterns are retrieved up to a load :math:`P/N \approx 0.138`
(Amit, Gutfreund & Sompolinsky 1985). The storage is the plain Hebb rule of
:mod:`plasticity` (``Hebb``, ``hebbian_storage``), written here again because ``ann`` sits
below ``plasticity`` and may not import it; the tests check that both give the same weights.

Modern dense Hopfield (Ramsauer et al. 2020), stored patterns :math:`X` ``(P, N)`` (rows), state
:math:`\xi`:

.. math::
    \xi \leftarrow X^T \mathrm{softmax}(\beta X \xi), \qquad
    E(\xi) = -\beta^{-1} \log \sum_\mu e^{\beta\, x_\mu^T \xi} + \tfrac12 \xi^T \xi + \beta^{-1} \log P + \tfrac12 M^2

(:math:`M` the largest pattern norm), the attention update; it stores exponentially many patterns
in :math:`N`. Arrays are NumPy or CuPy, batches ``(B, N)``.
"""

from __future__ import annotations

import numpy as np

from neuro.backend import array_module, is_cupy_array, resolve_dtype, to_device
from neuro.validation import check_int, check_positive

from ..generator import make_rng

__all__ = ["Hopfield", "ModernHopfield", "overlap"]


def _signs(xp, h, dtype, tol=0.0):
    """``sign(h)`` with ties (``|h| <= tol``) going to +1."""
    return xp.where(h >= -tol, 1.0, -1.0).astype(dtype)


def _check_module(x, like, name: str):
    if is_cupy_array(x) != is_cupy_array(like):
        raise TypeError(f"{name} is a {'CuPy' if is_cupy_array(x) else 'NumPy (host)'} array but the memory is on "
                        f"{'cupy' if is_cupy_array(like) else 'numpy'}; move one with neuro.backend.to_device")


def _states(x, n: int, like, name: str, binary: bool):
    """``x`` as ``(B, n)`` of ``like``'s module and dtype (a 1-D ``x`` is one state)."""
    _check_module(x, like, name)
    xp = array_module(like)
    x = xp.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (B, {n}) or ({n},), got {tuple(x.shape)}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
    x = x.astype(like.dtype, copy=False)
    if binary and bool((xp.abs(x) != 1).any()):
        raise ValueError(f"{name} must hold +1/-1 values (binary units); map 0/1 data with 2 x - 1")
    if not binary and not bool(xp.isfinite(x).all()):
        raise ValueError(f"{name} must be finite")
    return x


def overlap(states, patterns):
    """Overlaps ``m = s . xi / N`` ``(B,)`` of each state with its pattern (both ``(B, N)``; 1 = identical)."""
    xp = array_module(states, patterns)
    s, p = xp.asarray(states), xp.asarray(patterns)
    if s.shape != p.shape:
        raise ValueError(f"states and patterns must have the same shape, got {tuple(s.shape)} and {tuple(p.shape)}")
    return (s * p).sum(axis=-1) / s.shape[-1]


class Hopfield:
    """Classical binary Hopfield memory of ``n_units`` +1/-1 units (see the module docstring).

    ``W`` ``(N, N)`` starts at zero; :meth:`store` adds patterns (incremental Hebbian storage).
    float64 by default; ``backend`` as :func:`neuro.backend.to_device`.
    """

    def __init__(self, n_units: int, *, dtype=None, backend: str | None = None):
        self.n_units = check_int(n_units, "n_units")
        dtype = resolve_dtype(dtype, np.float64)
        self.W = to_device(np.zeros((self.n_units, self.n_units)), backend, dtype)
        self.n_patterns = 0

    @property
    def load(self) -> float:
        """``P / N``: stored patterns per unit."""
        return self.n_patterns / self.n_units

    def store(self, patterns) -> "Hopfield":
        """Add ``patterns`` ``(P, N)`` of +1/-1: ``W += xi^T xi / N`` with a zero diagonal. Returns ``self``."""
        xi = _states(patterns, self.n_units, self.W, "patterns", binary=True)
        xp = array_module(self.W)
        dW = xi.T @ xi / self.n_units
        dW[xp.arange(self.n_units), xp.arange(self.n_units)] = 0.0
        self.W += dW
        self.n_patterns += xi.shape[0]
        return self

    def energy(self, s):
        """``E(s) = -s^T W s / 2`` per state ``(B,)``."""
        return self._energy(_states(s, self.n_units, self.W, "s", binary=True))

    def _energy(self, s):
        return -0.5 * ((s @ self.W) * s).sum(axis=1)

    def recall(self, probe, *, mode: str = "async", max_sweeps: int = 100, seed=None, energy_trace: bool = False):
        """Update ``probe`` ``(B, N)`` (+1/-1) until no unit changes or ``max_sweeps`` sweeps.

        ``mode="async"``: each sweep updates the units one at a time in a random order (from
        ``seed``; the same order for the whole batch), which never raises the energy.
        ``mode="sync"``: every unit at once, ``s <- sign(W s)`` (may end in a 2-cycle; as
        :func:`plasticity.memory.recall`). Returns the states ``(B, N)``; with ``energy_trace``
        also the energies ``(B, 1 + updates)`` after every single-unit update (async) or step (sync).
        """
        if mode not in ("async", "sync"):
            raise ValueError(f"mode must be 'async' or 'sync', got {mode!r}")
        max_sweeps = check_int(max_sweeps, "max_sweeps")
        s = _states(probe, self.n_units, self.W, "probe", binary=True).copy()
        xp = array_module(self.W)
        trace = [self._energy(s)] if energy_trace else None
        rng = make_rng(seed)
        # fields within rounding of 0 are ties: their sign would depend on the summation order
        tol = 64 * np.finfo(s.dtype).eps * float(xp.abs(self.W).sum(axis=1).max())
        for _ in range(max_sweeps):
            before = s.copy()
            if mode == "sync":
                s = _signs(xp, s @ self.W.T, s.dtype, tol)
                if trace is not None:
                    trace.append(self._energy(s))
            else:
                for i in rng.permutation(self.n_units):
                    s[:, i] = _signs(xp, s @ self.W[i], s.dtype, tol)
                    if trace is not None:
                        trace.append(self._energy(s))
            if bool((s == before).all()):
                break
        return (s, xp.stack(trace, axis=1)) if energy_trace else s


class ModernHopfield:
    """Modern dense Hopfield memory (Ramsauer et al. 2020) over stored ``patterns`` ``(P, N)``.

    ``beta > 0`` is the inverse temperature: large ``beta`` retrieves single patterns, small
    ``beta`` averages them (metastable states). Patterns may be any real vectors; they are kept
    as given (NumPy or CuPy; float64 unless already floating).
    """

    def __init__(self, patterns, *, beta: float = 1.0):
        xp = array_module(patterns)
        X = xp.asarray(patterns)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"patterns must have shape (P, N) with P, N >= 1, got {tuple(X.shape)}")
        self.X = X.astype(X.dtype if X.dtype.kind == "f" else np.float64, copy=False)
        if not bool(xp.isfinite(self.X).all()):
            raise ValueError("patterns must be finite")
        self.beta = check_positive(beta, "beta")

    @property
    def n_patterns(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_units(self) -> int:
        return int(self.X.shape[1])

    def _softmax_scores(self, xi):
        xp = array_module(xi)
        a = self.beta * (xi @ self.X.T)  # (B, P)
        a = a - a.max(axis=1, keepdims=True)
        e = xp.exp(a)
        return e / e.sum(axis=1, keepdims=True)

    def retrieve(self, query, *, steps: int = 1):
        """``steps`` updates ``xi <- softmax(beta xi X^T) X`` of ``query`` ``(B, N)``; returns ``(B, N)``.

        One step usually suffices for well-separated patterns (Ramsauer et al. 2020).
        """
        steps = check_int(steps, "steps")
        xi = _states(query, self.n_units, self.X, "query", binary=False)
        for _ in range(steps):
            xi = self._softmax_scores(xi) @ self.X
        return xi

    def energy(self, xi):
        """The energy ``E(xi)`` per state ``(B,)`` (see the module docstring); log-sum-exp, no overflow."""
        xi = _states(xi, self.n_units, self.X, "xi", binary=False)
        xp = array_module(xi)
        a = self.beta * (xi @ self.X.T)
        m = a.max(axis=1)
        lse = m + xp.log(xp.exp(a - m[:, None]).sum(axis=1))
        big_m = float(xp.sqrt((self.X * self.X).sum(axis=1)).max())
        return -lse / self.beta + 0.5 * (xi * xi).sum(axis=1) + np.log(self.n_patterns) / self.beta + 0.5 * big_m**2
