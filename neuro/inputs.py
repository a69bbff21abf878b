"""Inputs: spike sources (given spike times, Poisson trains) and injected currents.

Spike sources are populations without dynamics: they have ``n`` neurons and
a name, are connected with :meth:`neuro.Network.connect` like neuron
populations, and emit spikes in the threshold phase of each step (Brian2's
``SpikeGeneratorGroup`` / ``PoissonGroup``). Currents are injected into a
neuron population with :meth:`neuro.Network.inject`.

Randomness is per trial: trial ``b`` draws from its own generator (see
:meth:`neuro.Network.reset`), so a batch of trials equals the same trials
run one at a time.
"""

from __future__ import annotations

import numba
import numpy as np

from .backend import make_rng
from .kernels import register
from .kernels.spiking import SOURCE as SPIKING_SOURCE, launch_poisson_advance
from .philox import poisson_isi, poisson_isi_reference, stream_keys
from .validation import check_nonneg, check_positive, check_probability, timestep

__all__ = ["Current", "PoissonInput", "SpikeSource", "SpikeTimes", "correlated_spike_times"]


class SpikeSource:
    """Base of the spike sources: ``n`` neurons named ``name``; ``spikes`` (B, n) bool after each step."""

    is_source = True

    def __init__(self, n: int, name: str):
        self.n, self.name = n, name
        self.spikes = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n={self.n})"

    def _reset(self, batch_size: int, dt: float, rngs: list) -> None:
        self.spikes = np.zeros((batch_size, self.n), dtype=bool)

    def _advance(self, step: int) -> np.ndarray:
        raise NotImplementedError


class SpikeTimes(SpikeSource):
    """Neurons that spike at given times (Brian2's ``SpikeGeneratorGroup``).

    Parameters
    ----------
    n : number of neurons
    indices : (K,) int, the neuron of each spike
    times : (K,) float, ms, >= 0 (binned to steps as Brian2 does: ``int((t + 1e-3 dt)/dt)``)
    trials : (K,) int or None
        The trial of each spike; ``None``: every trial gets all spikes.
    """

    def __init__(self, n: int, indices, times, trials=None, name: str = "spike_times"):
        super().__init__(n, name)
        self.set_spikes(indices, times, trials)

    def set_spikes(self, indices, times, trials=None) -> None:
        """Replace the spikes (same arguments as the constructor); they take effect at the next ``reset``."""
        n = self.n
        indices = np.asarray(indices)
        times = np.asarray(times, dtype=np.float64)
        if indices.ndim != 1 or times.shape != indices.shape:
            raise ValueError(f"indices and times must be 1-D of the same length, got {indices.shape} and {times.shape}")
        if len(indices) and indices.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got {indices.dtype}")
        if len(indices) and (indices.min() < 0 or indices.max() >= n):
            raise ValueError(f"indices must be in [0, {n}), got range [{indices.min()}, {indices.max()}]")
        if len(times) and (not np.all(np.isfinite(times)) or times.min() < 0):
            raise ValueError("times must be finite and >= 0 (ms)")
        if trials is not None:
            trials = np.asarray(trials)
            if trials.shape != indices.shape or (len(trials) and trials.dtype.kind not in "iu"):
                raise ValueError(f"trials must be an int array of shape {indices.shape}, got {trials.shape}")
            if len(trials) and trials.min() < 0:
                raise ValueError("trials must be >= 0")
        self.indices = indices.astype(np.int64)
        self.times = times
        self.trials = None if trials is None else trials.astype(np.int64)

    def _reset(self, batch_size, dt, rngs):
        super()._reset(batch_size, dt, rngs)
        steps = timestep(self.times, dt)
        if self.trials is None:
            trials = np.full(len(steps), -1, np.int64)
        else:
            if len(self.trials) and self.trials.max() >= batch_size:
                raise ValueError(f"trials of {self.name!r} go up to {self.trials.max()}, but batch_size is {batch_size}")
            trials = self.trials
        order = np.argsort(steps, kind="stable")
        self._steps, self._trials, self._idx = steps[order], trials[order], self.indices[order]
        self._pos = 0

    def _advance(self, step):
        spikes = self.spikes
        spikes[:] = False
        lo = self._pos
        if lo < len(self._steps) and self._steps[lo] <= step:
            hi = int(np.searchsorted(self._steps, step, side="right"))
            sel = slice(lo, hi)
            hit = self._steps[sel] == step  # earlier (already passed) steps are skipped
            trials, idx = self._trials[sel][hit], self._idx[sel][hit]
            every = trials < 0
            spikes[:, idx[every]] = True
            spikes[trials[~every], idx[~every]] = True
            self._pos = hi
        return spikes


class PoissonInput(SpikeSource):
    """Independent Poisson spike trains (Brian2's ``PoissonGroup``).

    ``rates`` in Hz: a scalar, (n,) (per neuron) or (B, n) (per trial and
    neuron, checked at reset). A neuron spikes in a step with probability
    ``p = rate * dt / 1000``, independently of other steps: the trains are
    Brian2's, in distribution. They are drawn as geometric inter-spike
    intervals (a cost per spike, not per step) from the counter-based
    generator of :mod:`neuro.philox`: trial ``b`` keys its stream from its
    own generator at reset, and the ``k``-th interval of neuron ``i`` is a
    function of (key, ``i``, ``k``) alone, so a trial draws the same spikes
    alone or in any batch, in the step-by-step engine, the fused engine
    and on the GPU.

    State after reset: ``_next`` (B, n) int64, the step of each neuron's
    next spike; ``_draws`` (B, n) int64, intervals drawn so far; ``_log_q``
    (B, n) ``log(1 - p)``; ``_keys`` (B, 2) the streams' keys.
    """

    def __init__(self, n: int, rates, name: str = "poisson"):
        super().__init__(n, name)
        self.set_rates(rates)

    def set_rates(self, rates) -> None:
        """Replace the rates (Hz; scalar, (n,) or (B, n)); they take effect at the next ``reset``."""
        n = self.n
        rates = np.asarray(rates, dtype=np.float64)
        if rates.ndim == 0:
            rates = np.full(n, float(rates))
        if rates.shape[-1:] != (n,) or rates.ndim > 2:
            raise ValueError(f"rates must be a scalar, ({n},) or (B, {n}), got shape {rates.shape}")
        if not np.all(np.isfinite(rates)) or rates.min(initial=0.0) < 0:
            raise ValueError("rates must be finite and >= 0 (Hz)")
        self.rates = rates

    def _reset(self, batch_size, dt, rngs):
        super()._reset(batch_size, dt, rngs)
        if self.rates.ndim == 2 and self.rates.shape[0] != batch_size:
            raise ValueError(f"rates of {self.name!r} have shape {self.rates.shape}, expected ({batch_size}, {self.n})")
        p = np.broadcast_to(self.rates * dt * 1e-3, (batch_size, self.n))
        if p.max(initial=0.0) > 1:
            raise ValueError(f"rates of {self.name!r} give a spike probability above 1 per step (rate * dt > 1000 Hz ms)")
        with np.errstate(divide="ignore"):
            self._log_q = np.ascontiguousarray(np.log1p(-p))
        self._keys = stream_keys(rngs)
        self._draws = np.zeros((batch_size, self.n), np.int64)
        self._next = np.zeros((batch_size, self.n), np.int64)
        # the first spike falls on step ``interval - 1`` (a spike at step 0 has probability p)
        poisson_first(self._keys, self._log_q, self._draws, self._next)

    def _advance(self, step):
        poisson_advance(self._keys, self._log_q, self._draws, self._next, step, self.spikes)
        return self.spikes


@numba.njit(cache=True, nogil=True)
def poisson_first(keys, log_q, draws, next_step):
    """Draw the first interval of every (trial, neuron): ``next_step = interval - 1``; (B, n) arrays."""
    B, n = next_step.shape
    for b in range(B):
        for i in range(n):
            next_step[b, i] = poisson_isi(keys[b, 0], keys[b, 1], i, draws[b, i], log_q[b, i]) - 1
            draws[b, i] += 1


@numba.njit(cache=True, nogil=True)
def poisson_advance(keys, log_q, draws, next_step, step, spikes):
    """The spikes of ``step`` into ``spikes`` (B, n) bool; each spiking neuron draws its next interval."""
    B, n = next_step.shape
    for b in range(B):
        for i in range(n):
            s = next_step[b, i] == step
            spikes[b, i] = s
            if s:
                next_step[b, i] = step + poisson_isi(keys[b, 0], keys[b, 1], i, draws[b, i], log_q[b, i])
                draws[b, i] += 1


def poisson_advance_reference(keys, log_q, draws, next_step, step, spikes):
    """:func:`poisson_advance` in NumPy (the test oracle)."""
    np.equal(next_step, step, out=spikes)
    b, i = np.nonzero(spikes)
    if len(b):
        next_step[b, i] = step + poisson_isi_reference(keys[b], i, draws[b, i], log_q[b, i])
        draws[b, i] += 1


POISSON_ADVANCE = register(
    "spiking_poisson_advance", reference=poisson_advance_reference, cpu=poisson_advance, cuda_source=SPIKING_SOURCE,
    cuda_function="spiking_poisson_advance", cuda_launch=launch_poisson_advance,
    doc="one step of Poisson inputs: spikes where the next spike is due, then the next Philox interval",
)


class Current:
    """A current (nA) injected into a neuron population.

    ``amplitude``: constant, broadcastable to (B, N) (scalar, (N,) or (B, N));
    or, with ``every`` (ms), a waveform (T, N) or (B, T, N): sample ``k`` is
    held over ``[k every, (k + 1) every)`` and the current is 0 after the
    last sample. Times count from the network's step 0.
    """

    def __init__(self, n: int, amplitude, every: float | None = None):
        amp = np.asarray(amplitude, dtype=np.float64)
        if not np.all(np.isfinite(amp)):
            raise ValueError("amplitude must be finite")
        if every is None:
            if amp.ndim > 2 or (amp.ndim >= 1 and amp.shape[-1] not in (1, n)):
                raise ValueError(f"amplitude must be a scalar, ({n},) or (B, {n}), got shape {amp.shape}")
        else:
            if every <= 0:
                raise ValueError(f"every must be > 0 (ms), got {every}")
            if amp.ndim not in (2, 3) or amp.shape[-1] != n:
                raise ValueError(f"a waveform amplitude must have shape (T, {n}) or (B, T, {n}), got {amp.shape}")
        self.n, self.amplitude, self.every = n, amp, every

    def _reset(self, batch_size: int, dt: float) -> None:
        amp = self.amplitude
        lead = amp.shape[0] if (self.every is None and amp.ndim == 2) or amp.ndim == 3 else None
        if lead is not None and lead not in (1, batch_size):
            raise ValueError(f"the current's trial axis has length {lead}, but batch_size is {batch_size}")
        if self.every is not None:
            self._every_steps = max(1, int(round(self.every / dt)))

    @property
    def constant(self) -> bool:
        return self.every is None

    def value(self, step: int):
        """The current at ``step``: broadcastable to (B, N)."""
        if self.every is None:
            return self.amplitude
        k = step // self._every_steps
        T = self.amplitude.shape[-2]
        if k >= T:
            return 0.0
        return self.amplitude[..., k, :]


def correlated_spike_times(n: int, n_correlated: int, rate: float, c: float, duration: float, dt: float, *,
                           trials: int = 1, seed=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson spike times of ``n`` inputs whose first ``n_correlated`` share a common train.

    Time is cut into ``duration / dt`` slots (ms); every input spikes in a slot
    with probability ``rate * dt`` (``rate`` in Hz). Per trial a common train
    of the same rate is drawn, and each of the first ``n_correlated`` inputs
    copies it in a slot with probability ``c``: all inputs keep the rate, and
    two correlated inputs have a correlation coefficient of about ``c**2``. The trials
    are drawn one after another from the one generator of ``seed``.
    Returns ``(indices, times, trials)``, as :meth:`neuro.Network.spike_times`
    takes them.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if isinstance(n_correlated, bool) or not isinstance(n_correlated, (int, np.integer)) or not 0 <= n_correlated <= n:
        raise ValueError(f"n_correlated must be an int in [0, n={n}], got {n_correlated!r}")
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be an int >= 1, got {trials!r}")
    c = check_probability(c, "c")
    dt = check_positive(dt, "dt")
    steps = int(check_positive(duration, "duration") / dt)
    p = check_probability(check_nonneg(rate, "rate") * dt / 1000.0, "rate * dt / 1000 (spike probability per slot)")
    rng = make_rng(seed)
    indices, times, trial_of = [], [], []
    for b in range(trials):
        common = rng.random(steps) < p
        spikes = rng.random((steps, n)) < p
        copy = rng.random((steps, n_correlated)) < c
        spikes[:, :n_correlated] = np.where(copy, common[:, None], spikes[:, :n_correlated])
        t, k = np.nonzero(spikes)
        indices.append(k)
        times.append(t * dt)
        trial_of.append(np.full(len(k), b))
    return np.concatenate(indices), np.concatenate(times), np.concatenate(trial_of)
