"""Monitors: spikes, state variables, population rates, filtered spike traces.

Made by the ``Network.monitor_*`` methods; they record while the network
runs (over successive ``run`` calls, until the next ``reset``). Time
convention (Brian2's): step ``n`` is time ``t = n dt``; a spike found in
step ``n`` has time ``n dt``; a state variable recorded at ``n dt`` is its
value at the start of step ``n``.

Axes (the toolkit's convention, DESIGN.md): batch, then time, then units.
``StateMonitor.values[var]`` and ``TraceMonitor.values`` are ``(B, K, N)``,
``RateMonitor.rate`` and ``counts`` ``(B, T)``; ``t`` is ``(K,)``. Records
are stored time-first (rows are appended as the network steps) and read as
views of the stored array with its first two axes swapped (the view
``np.moveaxis(stored, 0, 1)`` gives): no copy per access, in general not
C-contiguous (``np.ascontiguousarray`` gives a compact copy), and what a
view shows stays as it was over later runs (a later run stores into a new
array or the rows after it).
"""

from __future__ import annotations

import numpy as np

from .validation import check_positive, timestep

__all__ = ["RateMonitor", "SpikeMonitor", "StateMonitor", "TraceMonitor"]


def joined(blocks: list, empty_shape: tuple, dtype) -> np.ndarray:
    """The time-first blocks ``(K_i, ...)`` of a record as one array, kept as the record's only block.

    So reading a record again copies nothing, and the blocks' memory is held once.
    """
    if len(blocks) > 1:
        blocks[:] = [np.concatenate(blocks)]
    return blocks[0] if blocks else np.zeros(empty_shape, dtype)


class Monitor:
    def __init__(self, source):
        self.source = source
        self.dt = None

    def _reset(self, batch_size: int, dt: float) -> None:
        self.batch_size, self.dt = batch_size, dt

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.source, 'name', self.source)!r})"

    def _start(self, step: int) -> None:  # before the step
        pass

    def _record(self, step: int) -> None:  # after the step
        pass


class SpikeMonitor(Monitor):
    """Every spike of a population (or spike source).

    Attributes after a run: ``t`` (K,) ms, ``i`` (K,) neuron, ``trial`` (K,)
    trial, sorted by time, then trial, then neuron; ``count`` (B, N) spikes
    per neuron and trial. :meth:`trains` gives per-neuron spike times.
    """

    def _reset(self, batch_size, dt):
        super()._reset(batch_size, dt)
        self._steps, self._trials, self._idx = [], [], []
        self.count = np.zeros((batch_size, self.source.n), np.int64)

    def _record(self, step):
        spikes = self.source.spikes
        if spikes.any():
            b, i = np.nonzero(spikes)
            self._steps.append(np.full(len(b), step, np.int64))
            self._trials.append(b)
            self._idx.append(i)
            self.count[b, i] += 1

    def _record_events(self, steps, trials, idx, counted: bool = False, ordered: bool = False):
        """Record spike events (K,) of steps after those recorded (the fused and device engines).

        The record stays sorted by step, then trial, then neuron. ``counted``:
        the caller has added the events to ``count`` already; ``ordered``: they
        are in that order already (not checked).
        """
        if len(steps):
            if not ordered:  # engines give (step, neuron, trial): sorted when B == 1
                key = (steps.astype(np.int64) * self.batch_size + trials) * self.source.n + idx  # as one int64
                if not np.all(key[1:] >= key[:-1]):
                    order = np.argsort(key, kind="stable")
                    steps, trials, idx = steps[order], trials[order], idx[order]
            self._steps.append(steps)
            self._trials.append(trials)
            self._idx.append(idx)
            if not counted:
                self.count += np.bincount(trials * self.source.n + idx,
                                          minlength=self.count.size).reshape(self.count.shape)

    def _set(self, steps, trials, idx):
        """Replace the record (used by the Brian2 bridge); arrays (K,)."""
        self._reset(self.batch_size, self.dt)
        self._record_events(steps, trials, idx)

    def _cat(self, parts):
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    @property
    def steps(self) -> np.ndarray:
        return self._cat(self._steps)

    @property
    def t(self) -> np.ndarray:
        return self.steps * self.dt

    @property
    def i(self) -> np.ndarray:
        return self._cat(self._idx)

    @property
    def trial(self) -> np.ndarray:
        return self._cat(self._trials)

    def trains(self, trial: int = 0) -> list[np.ndarray]:
        """Spike times (ms) of each neuron in ``trial``: a list of N arrays."""
        t, i, b = self.t, self.i, self.trial
        sel = b == trial
        t, i = t[sel], i[sel]
        return [t[i == k] for k in range(self.source.n)]


class StateMonitor(Monitor):
    """State variables of chosen neurons every ``every`` ms.

    ``values[var]`` (B, K, len(indices)) after a run, also as attribute
    (``mon.v``); ``t`` (K,) ms. Recorded at the start of each step ``n``
    with ``n`` a multiple of ``every / dt``, in the network's dtype. Each
    variable is stored time-first in one array, sized before each ``run``
    for the steps it will record; ``values`` gives views of it with the
    first two axes swapped (no copy, in general not C-contiguous; a later
    ``run`` writes the rows after the ones a view shows or moves the record
    to a new array, never changing what a view shows).
    """

    def __init__(self, source, variables, indices=None, every: float | None = None):
        super().__init__(source)
        if isinstance(variables, str):
            variables = [variables]
        self.variables = list(variables)
        if indices is None:
            indices = np.arange(source.n)
        indices = np.asarray(indices)
        if indices.ndim != 1 or (len(indices) and (indices.dtype.kind not in "iu" or indices.min() < 0
                                                   or indices.max() >= source.n)):
            raise ValueError(f"indices must be a 1-D int array of neurons in [0, {source.n})")
        self.indices = indices.astype(np.int64)
        self.every = None if every is None else check_positive(every, "every")

    def _reset(self, batch_size, dt):
        super()._reset(batch_size, dt)
        for var in self.variables:
            if var not in self.source.state:
                raise ValueError(f"{self.source.name!r} has no state variable {var!r}; "
                                 f"it has {sorted(self.source.state)}")
        self._every_steps = 1 if self.every is None else max(1, int(round(self.every / dt)))
        self._n_rec = 0
        self._step_store = np.empty(0, np.int64)
        shape = (0, batch_size, len(self.indices))
        self._store = {v: np.empty(shape, self.source.state[v].dtype) for v in self.variables}

    def _count(self, step0: int, n_steps: int) -> int:
        """How many of the steps ``step0 .. step0 + n_steps - 1`` are recorded."""
        e = self._every_steps
        return max(0, -(-(step0 + n_steps) // e) - (-(-step0 // e)))

    def _nbytes(self, step0: int, n_steps: int) -> int:
        """Bytes the record grows by over ``n_steps`` steps from ``step0``."""
        per = self.batch_size * len(self.indices) * sum(self.source.state[v].dtype.itemsize for v in self.variables)
        return self._count(step0, n_steps) * per

    def _reserve(self, step0: int, n_steps: int) -> None:
        """Grow the stored arrays (one copy) to hold the records of the next ``n_steps`` steps."""
        need = self._n_rec + self._count(step0, n_steps)
        if need <= len(self._step_store):
            return
        steps = np.empty(need, np.int64)
        steps[: self._n_rec] = self._step_store[: self._n_rec]
        self._step_store = steps
        for var, old in self._store.items():
            new = np.empty((need,) + old.shape[1:], old.dtype)
            new[: self._n_rec] = old[: self._n_rec]
            self._store[var] = new

    def _append(self, step: int, row: dict) -> None:
        if self._n_rec == len(self._step_store):  # a caller that did not reserve (step by step): grow by half
            self._reserve(step, max(1, self._n_rec // 2) * self._every_steps)
        k = self._n_rec
        self._step_store[k] = step
        for var in self.variables:
            self._store[var][k] = row[var]
        self._n_rec = k + 1

    def _start(self, step):
        if step % self._every_steps == 0:
            state = self.source.state
            self._append(step, {var: state[var][:, self.indices] for var in self.variables})

    def _record_chunk(self, step0, values):
        """Record values var -> (K, B, n) of steps ``step0 ..`` at the start of each step (the fused engine)."""
        K = next(iter(values.values())).shape[0]
        for k in range(K):
            if (step0 + k) % self._every_steps == 0:
                self._append(step0 + k, {var: values[var][k] for var in self.variables})

    def _set(self, steps, values):
        """Replace the record (used by the Brian2 bridge): steps (K,), values var -> (K, B, n)."""
        self._step_store = np.asarray(steps, np.int64).copy()
        self._n_rec = len(self._step_store)
        self._store = {v: np.asarray(values[v], dtype=self._store[v].dtype) for v in self.variables}

    @property
    def t(self) -> np.ndarray:
        return self._step_store[: self._n_rec] * self.dt

    @property
    def values(self) -> dict[str, np.ndarray]:
        """``{var: (B, K, len(indices))}``: views of the stored (K, B, len(indices)) arrays."""
        return {v: x[: self._n_rec].swapaxes(0, 1) for v, x in self._store.items()}

    def __getattr__(self, key):
        if key in self.__dict__.get("variables", ()):
            return self.values[key]
        raise AttributeError(key)


class RateMonitor(Monitor):
    """Population rate per step: ``rate`` (B, T) in Hz (spikes / (N dt)), ``t`` (T,) ms.

    ``counts`` (B, T) is a view of the stored (T, B) record (no copy per access).
    """

    def _reset(self, batch_size, dt):
        super()._reset(batch_size, dt)
        self._counts = []

    def _record(self, step):
        self._counts.append(np.count_nonzero(self.source.spikes, axis=1)[None])  # stored time-first: (1, B)

    def _record_chunk(self, step0, raster):
        self._counts.append(np.count_nonzero(raster, axis=2))

    def _set(self, counts):
        """Replace the record (used by the Brian2 bridge): counts (T, B)."""
        self._counts = [np.asarray(counts)]

    @property
    def counts(self) -> np.ndarray:
        """Spikes per trial and step (B, T): a view of the stored (T, B) record."""
        return joined(self._counts, (0, self.batch_size), np.int64).swapaxes(0, 1)

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.counts.shape[1]) * self.dt

    @property
    def rate(self) -> np.ndarray:
        """Population rate (B, T), Hz (a new C-ordered array: a trial's row reduces as it would alone)."""
        return np.divide(self.counts, self.source.n * self.dt * 1e-3, order="C")

    def smooth_rate(self, width: float) -> np.ndarray:
        """``rate`` averaged with a flat window of ``width`` ms (B, T)."""
        k = max(1, int(round(check_positive(width, "width") / self.dt)))
        kernel = np.ones(k) / k
        return np.stack([np.convolve(r, kernel, mode="same") for r in self.rate])

    def mean_rate(self) -> np.ndarray:
        """Mean rate of each trial over the record, Hz (B,)."""
        return self.rate.mean(axis=1)


class TraceMonitor(Monitor):
    """Exponentially filtered spike trains, the usual liquid-state readout.

    ``x_k(t) = sum over spikes of neuron k with t_s < t of exp(-(t - t_s)/tau)``,
    sampled at ``times`` (ms, > 0, from the start of the record) or every
    ``every`` ms. ``values`` (B, K, N) float64, a view of the stored
    (K, B, N) record (no copy per access); ``t`` (K,) ms.
    """

    def __init__(self, source, tau: float, times=None, every: float | None = None):
        super().__init__(source)
        self.tau = check_positive(tau, "tau")
        if (times is None) == (every is None):
            raise ValueError("give exactly one of times (ms) or every (ms)")
        if times is not None:
            times = np.asarray(times, dtype=np.float64)
            if times.ndim != 1 or (len(times) and (times.min() <= 0 or not np.all(np.isfinite(times)))):
                raise ValueError("times must be a 1-D array of finite times > 0 (ms)")
        self.times = times
        self.every = None if every is None else check_positive(every, "every")

    def _reset(self, batch_size, dt):
        super()._reset(batch_size, dt)
        self._decay = np.exp(-dt / self.tau)
        self._x = np.zeros((batch_size, self.source.n))
        if self.times is not None:
            self._sample_steps = set(int(s) for s in timestep(self.times, dt))
        else:
            self._every_steps = max(1, int(round(self.every / dt)))
        self._steps, self._values = [], []

    def _due(self, k: int) -> bool:  # sample at time k dt?
        if self.times is not None:
            return k in self._sample_steps
        return k % self._every_steps == 0

    def _record(self, step):
        x = self._x
        x += self.source.spikes
        x *= self._decay
        if self._due(step + 1):
            self._steps.append(step + 1)
            self._values.append(x[None].copy())  # stored time-first: (1, B, N)

    def _record_chunk(self, step0, raster):
        x = self._x
        for k, s in enumerate(raster):
            x += s
            x *= self._decay
            if self._due(step0 + k + 1):
                self._steps.append(step0 + k + 1)
                self._values.append(x[None].copy())

    def _set_from_spikes(self, spikes_per_step):
        """Recompute the record from a (T, B, N) bool raster (used by the Brian2 bridge)."""
        self._reset(self.batch_size, self.dt)
        self._record_chunk(0, spikes_per_step)

    @property
    def t(self) -> np.ndarray:
        return np.asarray(self._steps, dtype=np.float64) * self.dt

    @property
    def values(self) -> np.ndarray:
        """Traces (B, K, N): a view of the stored (K, B, N) record."""
        return joined(self._values, (0, self.batch_size, self.source.n), np.float64).swapaxes(0, 1)
