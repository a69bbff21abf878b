"""The spiking engine on a CUDA GPU (CuPy): :class:`neuro.Network` with ``backend="cupy"``.

``Network(..., backend="cupy")``, or ``backend=None`` (the default) while
:func:`neuro.set_backend` says ``"cupy"`` at :meth:`~neuro.Network.reset`,
puts the network's state on the GPU: :meth:`~neuro.Network.reset` builds
it on the host as always (the same initial values and per-trial seeds),
then :class:`DeviceEngine` moves it to the device once. Each step does what
:meth:`neuro.Network._tick` does, in the same order, on the device:

1. state monitors take their rows (device copies);
2. spike sources emit: Poisson inputs with the kernel
   ``spiking_poisson_advance`` (Philox intervals, ``philox.cuh``, the same
   draws as the CPU's :mod:`neuro.philox`), spike times from a schedule
   uploaded at reset;
3. populations integrate, threshold and reset: LIF and LIFCond with the
   CUDA kernels of ``spiking_lif_step`` and ``spiking_lif_cond_step``;
   Izhikevich, AdEx and AdExCond with their NumPy-API ``integrate``,
   ``threshold`` and ``reset`` on CuPy arrays;
4. projections send the step's spikes through their CSR rows into the
   (L, B, N) ring buffers (``spiking_propagate``, and
   ``spiking_propagate_tm`` for Tsodyks-Markram synapses; atomicAdd);
5. populations add the arriving slot to their synaptic state;
6. spike, rate and trace monitors record (device rasters and traces).

One thread per (trial, neuron) or (trial, presynaptic neuron): the trials
of a batch run in parallel. The step loop makes no host transfer: monitors
record into device buffers, which are brought home in chunks (every
``chunk`` steps, sized by :data:`CHUNK_BYTES`) and at the end of each
:meth:`~neuro.Network.run`, into the monitors' usual host records. So
monitor attributes (``SpikeMonitor.t``, ``count``, ``StateMonitor.values``,
...) stay NumPy arrays, with the CPU engine's meaning, filled once a run
returns. :meth:`~neuro.Network.step` (the coupling protocol) brings the
monitors' records home after each step and returns the spikes as CuPy
arrays.

State on the device: ``pop.state`` (``pop.v``, ``pop.I_e``, ...),
``pop.spikes``, ``source.spikes`` and the Tsodyks-Markram ``proj.u``,
``proj.R``, ``proj.last`` are CuPy arrays; :meth:`~neuro.Network.set_state`
takes CuPy or NumPy values. Synapse weights ``proj.w`` stay on the host and
are copied to the device at the start of each ``run`` and ``step`` (so
changes between runs take effect).

Equality with the CPU: the kernels do the CPU engine's float arithmetic in
the same order (no FMA contraction), and the Poisson inputs come from the
same counter-based generator, keyed by seed, trial, source, neuron and
spike. Under a NumPy emulation of the kernels (fakecupy) a seeded float64
run gives the CPU's spikes exactly (tested). On a GPU the spikes are the same
up to float rounding: CUDA's ``exp``/``log`` are within 1 ulp of the host's,
and atomicAdd sums the inputs reaching one neuron in one step in no fixed
order; a recurrent network can amplify such a last-bit difference into a
spike moved by a step.

Not on the device (a ``ValueError`` naming them, never a silent host
fallback): hooks (plasticity), ``engine="brian2"``, current waveforms
(``inject(..., every=...)``; constant currents are fine), per-trial
weights, spike sources other than Poisson inputs and spike times.
"""

from __future__ import annotations

import numpy as np

from .backend import _cupy
from .inputs import POISSON_ADVANCE, PoissonInput, SpikeTimes
from .monitors import RateMonitor, SpikeMonitor, StateMonitor, TraceMonitor
from .synapses import PROPAGATE_KERNEL, PROPAGATE_TM_KERNEL

__all__ = ["CHUNK_BYTES", "DeviceEngine", "check_device", "unsupported"]

#: Device memory (bytes) for the monitors' records between two transfers home; sets the chunk length.
CHUNK_BYTES = 1 << 28
#: At most this many steps per chunk.
MAX_CHUNK_STEPS = 4096

def _launch(kernel, like, *args) -> None:
    """Launch registered ``kernel``'s CUDA code for ``like``'s dtype on ``args`` (the reference's arguments)."""
    kernel.cuda_launch(kernel.cuda_kernel(like.dtype), *args)


def check_device(net) -> None:
    """Raise ``RuntimeError`` without a usable CuPy and GPU, ``ValueError`` naming what of ``net`` stays on the CPU."""
    _cupy()
    problems = unsupported(net)
    if problems:
        raise ValueError("backend 'cupy' cannot run this network: " + "; ".join(problems)
                         + " (these run on the CPU only: use backend='numpy')")


def unsupported(net) -> list[str]:
    """What in ``net`` cannot run on the device (empty when all of it can)."""
    problems = []
    if net.hooks:
        problems.append("hooks (add_hook, plasticity)")
    for pop in net.populations:
        if any(not c.constant for c in pop.currents):
            problems.append(f"current waveforms (inject(..., every=...)) into {pop.name!r}")
    for src in net.sources:
        if not isinstance(src, (PoissonInput, SpikeTimes)):
            problems.append(f"spike source {src.name!r} of type {type(src).__name__}")
    for proj in net.projections:
        if np.ndim(proj.w) != 1:
            problems.append(f"per-trial weights of projection {proj.name!r}")
    return problems


def _grouped(records: list[tuple]):
    """``(monitor, step, value)`` records as ``(monitor, steps, values)``, one per monitor, in order."""
    groups: dict[int, tuple] = {}
    for mon, step, value in records:
        groups.setdefault(id(mon), (mon, [], []))
        groups[id(mon)][1].append(step)
        groups[id(mon)][2].append(value)
    return list(groups.values())


class _SpikeSchedule:
    """A :class:`~neuro.inputs.SpikeTimes` source on the device: flat (trial * n + neuron) positions sorted by step.

    Events for every trial are expanded to one per trial at reset; a step
    sets ``spikes`` from the slice of positions of that step, found on the
    host from the (host) sorted steps, so no transfer is needed.
    """

    def __init__(self, src: SpikeTimes, batch_size: int, xp):
        every = src._trials < 0
        n = src.n
        steps = np.concatenate([np.repeat(src._steps[every], batch_size), src._steps[~every]])
        flat = np.concatenate([(np.arange(batch_size)[None, :] * n + src._idx[every][:, None]).ravel(),
                               src._trials[~every] * n + src._idx[~every]])
        order = np.argsort(steps, kind="stable")
        self.src, self.steps = src, steps[order]
        self.flat = xp.asarray(flat[order].astype(np.int64))

    def advance(self, step: int) -> None:
        spikes = self.src.spikes
        spikes.fill(False)
        lo, hi = np.searchsorted(self.steps, [step, step + 1])
        if hi > lo:
            spikes.reshape(-1)[self.flat[lo:hi]] = True


class DeviceEngine:
    """The state of a reset :class:`~neuro.Network` on the GPU, and its step loop (see the module docstring).

    Made by :meth:`neuro.Network.reset` when the network's backend is
    ``"cupy"``; moves the host state built by the reset to the device.
    """

    def __init__(self, net):
        check_device(net)
        self.net = net
        xp = self.xp = _cupy()
        B = net.batch_size
        for pop in net.populations:
            pop.state = {k: xp.asarray(v) for k, v in pop.state.items()}
            pop.spikes = xp.asarray(pop.spikes)
            pop._p = {k: xp.asarray(v) for k, v in pop.params.items()}
            pop._buf = {r: xp.asarray(b) for r, b in pop._buf.items()}
            for attr in ("_decay_e", "_decay_i", "_ref_steps", "_decay_m", "_dt_tau", "_I_const", "_I_ext"):
                if attr in pop.__dict__:
                    setattr(pop, attr, xp.asarray(pop.__dict__[attr]))
        self._schedules = []
        for src in net.sources:
            src.spikes = xp.asarray(src.spikes)
            if isinstance(src, PoissonInput):
                src._keys, src._log_q = xp.asarray(src._keys), xp.asarray(src._log_q)
                src._draws, src._next = xp.asarray(src._draws), xp.asarray(src._next)
            else:
                self._schedules.append(_SpikeSchedule(src, B, xp))
        self._synapses = {}
        for proj in net.projections:
            arrays = {"indptr": proj.indptr, "post": proj.j, "delay": proj.delay_steps}
            if proj.dynamic:
                arrays.update(U=proj.U, D=proj.D, F=proj.F)
                proj.u, proj.R, proj.last = xp.asarray(proj.u), xp.asarray(proj.R), xp.asarray(proj.last)
            self._synapses[proj.name] = {k: xp.asarray(v) for k, v in arrays.items()}
        self._setup_records()

    # ------------------------------------------------------------ records

    def _setup_records(self) -> None:
        net, xp, B = self.net, self.xp, self.net.batch_size
        rastered = {}
        self._states, self._traces = [], []
        per_step = 0.0
        for mon in net.monitors:
            if isinstance(mon, (SpikeMonitor, RateMonitor)):
                rastered.setdefault(id(mon.source), mon.source)
            elif isinstance(mon, StateMonitor):
                item = sum(mon.source.state[v].dtype.itemsize for v in mon.variables)
                per_step += B * len(mon.indices) * item / mon._every_steps
                self._states.append((mon, xp.asarray(mon.indices)))
            elif isinstance(mon, TraceMonitor):
                per_step += B * mon.source.n * 8 / (1 if mon.times is not None else mon._every_steps)
                mon._x = xp.asarray(mon._x)
                self._traces.append(mon)
        per_step += sum(B * src.n for src in rastered.values())
        self.chunk = int(max(1, min(MAX_CHUNK_STEPS, CHUNK_BYTES // max(per_step, 1.0))))
        self._rasters = [(src, xp.zeros((self.chunk, B, src.n), bool)) for src in rastered.values()]
        self._k = 0  # steps recorded in the current chunk
        self._step0 = net._step  # the chunk's first step
        self._rows: list[tuple] = []  # (monitor, step, {var: (B, n) device array})
        self._samples: list[tuple] = []  # (trace monitor, step, (B, n) device array)

    def _start(self, step: int) -> None:
        for mon, idx in self._states:
            if step % mon._every_steps == 0:
                self._rows.append((mon, step, {v: mon.source.state[v][:, idx] for v in mon.variables}))

    def _record(self, step: int) -> None:
        for src, raster in self._rasters:
            raster[self._k] = src.spikes
        for mon in self._traces:
            x = mon._x
            x += mon.source.spikes
            x *= mon._decay
            if mon._due(step + 1):
                self._samples.append((mon, step + 1, x.copy()))
        self._k += 1
        if self._k == self.chunk:
            self.flush()

    def flush(self) -> None:
        """Bring the records of the current chunk home into the monitors (one transfer per record kind)."""
        xp, K, step0 = self.xp, self._k, self._step0
        for src, raster in self._rasters:
            if not K:
                break
            chunk = raster[:K]
            mons = [m for m in self.net.monitors if m.source is src]
            if any(isinstance(m, SpikeMonitor) for m in mons):
                k, b, i = (a.get() for a in xp.nonzero(chunk))
            if any(isinstance(m, RateMonitor) for m in mons):
                counts = xp.count_nonzero(chunk, axis=2).get().astype(np.int64)
            for mon in mons:
                if isinstance(mon, RateMonitor):
                    mon._counts.append(counts)
                elif isinstance(mon, SpikeMonitor):
                    mon._record_events(k + step0, b, i, ordered=True)  # nonzero: (step, trial, neuron) order
        for mon, steps, rows in _grouped(self._rows):  # one transfer per monitor and variable
            values = {v: xp.stack([row[v] for row in rows]).get() for v in mon.variables}
            for r, step in enumerate(steps):
                mon._append(step, {v: x[r] for v, x in values.items()})
        for mon, steps, xs in _grouped(self._samples):
            mon._steps.extend(steps)
            mon._values.append(xp.stack(xs).get())
        self._rows.clear()
        self._samples.clear()
        self._k = 0
        self._step0 = self.net._step

    # ------------------------------------------------------------- steps

    def _upload_weights(self) -> None:
        for proj in self.net.projections:
            self._synapses[proj.name]["w"] = self.xp.asarray(proj.w)

    def _tick(self, currents: dict | None = None) -> None:
        net = self.net
        n, dt = net._step, net.dt
        self._start(n)
        for src in net.sources:
            if isinstance(src, PoissonInput):
                _launch(POISSON_ADVANCE, src._log_q, src._keys, src._log_q, src._draws, src._next, n, src.spikes)
        for schedule in self._schedules:
            schedule.advance(n)
        for pop in net.populations:
            pop._advance(n, dt, "cuda", None if currents is None else currents.get(pop.name))
        for proj in net.projections:
            syn, buf = self._synapses[proj.name], proj.post._buf[proj.receptor]
            if proj.dynamic:
                _launch(PROPAGATE_TM_KERNEL, buf, proj.pre.spikes, syn["indptr"], syn["post"], syn["w"], syn["delay"],
                        syn["U"], syn["D"], syn["F"], proj.u, proj.R, proj.last, buf, n, dt)
            else:
                _launch(PROPAGATE_KERNEL, buf, proj.pre.spikes, syn["indptr"], syn["post"], syn["w"], syn["delay"], buf, n)
        for pop in net.populations:
            pop._deliver(n)
        net._step = n + 1
        self._record(n)

    def run(self, n_steps: int) -> None:
        """Advance ``n_steps`` steps; the monitors' records are home when it returns."""
        check_device(self.net)
        self._upload_weights()
        for _ in range(n_steps):
            self._tick()
        self.flush()

    def step(self, currents: dict | None = None) -> None:
        """One step with optional port currents ``{pop name: (B, N) CuPy array}``; records brought home."""
        check_device(self.net)
        self._upload_weights()
        self._tick(currents)
        self.flush()
