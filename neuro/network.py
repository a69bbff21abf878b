"""``Network``: the construction API and the batched clock-driven engine.

A Brian2 or NEST user should feel at home::

    net = Network(dt=0.1, seed=1)
    exc = net.population(80, LIF(tau_m=30, I_bg=13.5, t_ref=3), name="E")
    inp = net.poisson(20, rates=40.0, name="in")
    net.connect(inp, exc, "fixed_probability", p=0.2, weight=2.0, delay=1.0)
    net.connect(exc, exc, "fixed_probability", p=0.1, weight=0.5, delay=1.5, U=0.5, D=1100, F=50)
    spikes = net.monitor_spikes(exc)
    net.reset(batch_size=8)          # 8 independent trials advance together
    net.run(200.0)                   # ms
    spikes.count                     # (8, 80)

Each step ``n`` (time ``n dt``), in a fixed order that is Brian2's schedule:
state monitors record; spike sources emit; each population integrates,
thresholds and resets (see :mod:`neuro.neurons`); each projection sends the
spikes of this step into the ring buffers of its target (event-driven, CSR
rows of the spiking neurons only); each population adds the input arriving
at this step to its synaptic currents; spike/rate/trace monitors record;
then hooks (plasticity) run every ``k`` steps.

State has a leading trial axis: B independent trials of the same network
(same connectivity and initial weights, own initial state and own random
inputs; a projection with per-trial weights, ``Projection.per_trial_weights``,
gives each trial its own copy of the weights to change) advance together.
Trial ``b`` draws its randomness from its own generator, so a batch equals
its trials run one at a time with the same per-trial seeds.

``run`` advances many steps per numba call when the network allows it
(:mod:`neuro.engine`; identical results); ``step`` and hooks go one step at
a time. ``engine="brian2"`` builds and runs the same network in Brian2
instead (:mod:`neuro.brian2`, imported only then). ``backend="cupy"`` runs
the same steps on a CUDA GPU (:mod:`neuro.device_engine`).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np

from . import connectivity as conn
from .backend import BACKENDS, get_backend, make_rng, resolve_dtype
from .inputs import Current, PoissonInput, SpikeTimes
from .monitors import RateMonitor, SpikeMonitor, StateMonitor, TraceMonitor
from .neurons import LIF, NeuronModel
from .populations import Population
from .synapses import Projection
from .validation import check_memory, check_positive, warn_dt

__all__ = ["Network"]

ENGINES = ("neuro", "brian2")
IMPLS = ("cpu", "reference")
RULES = ("explicit", "all_to_all", "one_to_one", "fixed_probability", "fixed_indegree", "distance")


def trial_generators(seed, batch_size: int) -> list[np.random.Generator]:
    """One generator per trial: ``seed`` is an int/Generator/None (children spawned from it),
    or a sequence of ``batch_size`` per-trial seeds."""
    if isinstance(seed, (list, tuple)) or (isinstance(seed, np.ndarray) and seed.ndim == 1):
        if len(seed) != batch_size:
            raise ValueError(f"seed as a sequence must have one seed per trial ({batch_size}), got {len(seed)}")
        return [make_rng(int(s) if isinstance(s, np.integer) else s) for s in seed]
    return make_rng(seed).spawn(batch_size)


class Network:
    """A spiking network: populations, spike sources, projections, monitors.

    Parameters
    ----------
    dt : float, ms (default 0.1)
    seed : int, Generator or None
        Randomness of construction (connectivity, random weights) and the
        default for :meth:`reset`.
    impl : ``"cpu"`` (numba kernels, default) or ``"reference"`` (NumPy)
    engine : ``"neuro"`` (this engine) or ``"brian2"`` (default of :meth:`run`)
    parallel : bool (default False): let the fused path spread the trials of
        a batch over numba's threads (``NUMBA_NUM_THREADS``); same results
    dtype : floating dtype of the state (v, currents, buffers, synaptic state); default float64.
        Parameters stay float64; float32 halves the memory of large batches.
    fused : bool (default True): let :meth:`run` advance many steps per numba
        call when the network allows it (:mod:`neuro.engine`); the results
        are the same as step by step
    backend : ``"numpy"``, ``"cupy"`` or None (default: :func:`neuro.get_backend`
        at each :meth:`reset`). ``"cupy"`` runs on a CUDA GPU
        (:mod:`neuro.device_engine`: state as CuPy arrays, monitors' records
        brought home per run; hooks, current waveforms and Brian2 stay on the CPU)
    """

    def __init__(self, dt: float = 0.1, *, seed=None, impl: str = "cpu", engine: str = "neuro", fused: bool = True,
                 parallel: bool = False, dtype=None, backend: str | None = None):
        self.dt = check_positive(dt, "dt")
        self.dtype = resolve_dtype(dtype)
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
        self.impl, self.engine, self.fused, self.parallel = impl, engine, bool(fused), bool(parallel)
        self.backend = backend
        self._device = None  # the neuro.device_engine.DeviceEngine while the state is on the GPU
        self.seed = seed
        self._rng = make_rng(seed)
        self.populations: list[Population] = []
        self.sources: list = []
        self.projections: list[Projection] = []
        self.monitors: list = []
        self.hooks: list[tuple[Callable, int]] = []
        self._names: dict[str, Any] = {}
        self.batch_size = None
        self._step = 0
        self._stale = False  # True after a Brian2 run: reset before running again
        self._needs_reset = False  # True when changed after a reset

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}: {p.n} {type(p.model).__name__}" for p in self.populations)
        srcs = ", ".join(f"{s.name}: {s.n} {type(s).__name__}" for s in self.sources)
        synapses = sum(p.n_synapses for p in self.projections)
        state = "not reset" if self.batch_size is None else f"batch_size={self.batch_size}, t={self._step * self.dt:g} ms"
        return (f"Network(dt={self.dt:g} ms, populations=[{pops}], sources=[{srcs}], "
                f"{len(self.projections)} projections ({synapses} synapses), {len(self.monitors)} monitors, "
                f"engine={self.engine!r}, {state})")

    # ------------------------------------------------------------ building

    def _name(self, name, prefix):
        if name is None:
            k = len(self._names)
            name = f"{prefix}{k}"
            while name in self._names:
                k += 1
                name = f"{prefix}{k}"
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"name must be a non-empty str without '.', got {name!r}")
        if name in self._names:
            raise ValueError(f"name {name!r} is already used in this network")
        return name

    def _add(self, obj):
        self._names[obj.name] = obj
        self._changed()
        return obj

    def _changed(self) -> None:
        """The network was changed: it must be reset before it runs (again)."""
        self._fused_synapses = None  # the fused engine's synapse groups (neuro.engine), rebuilt on its next run
        if self.batch_size is not None:
            self._needs_reset = True
        self.batch_size = None

    def __getitem__(self, name: str):
        """The population, spike source or projection called ``name``."""
        return self._names[name]

    def __contains__(self, name: str) -> bool:
        return name in self._names

    @staticmethod
    def _check_n(n, name="n"):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
        return int(n)

    def population(self, n: int, model: NeuronModel | None = None, *, name: str | None = None,
                   v_init: Any = None, positions=None) -> Population:
        """Add ``n`` neurons of ``model`` (default ``LIF()``); see :class:`~neuro.populations.Population`."""
        pop = Population(self._check_n(n), LIF() if model is None else model, self._name(name, "pop"), v_init, positions)
        self.populations.append(pop)
        return self._add(pop)

    def spike_times(self, n: int, indices, times, trials=None, *, name: str | None = None) -> SpikeTimes:
        """Add ``n`` input neurons spiking at given ``times`` (ms); see :class:`~neuro.inputs.SpikeTimes`."""
        src = SpikeTimes(self._check_n(n), indices, times, trials, name=self._name(name, "spikes"))
        self.sources.append(src)
        return self._add(src)

    def poisson(self, n: int, rates, *, name: str | None = None) -> PoissonInput:
        """Add ``n`` Poisson input neurons at ``rates`` (Hz); see :class:`~neuro.inputs.PoissonInput`."""
        src = PoissonInput(self._check_n(n), rates, name=self._name(name, "poisson"))
        self.sources.append(src)
        return self._add(src)

    def inject(self, pop: Population, amplitude, *, every: float | None = None) -> Current:
        """Inject a current (nA) into ``pop``: constant, or a waveform sampled every ``every`` ms."""
        self._check_member(pop, "pop", populations_only=True)
        current = Current(pop.n, amplitude, every)
        pop.currents.append(current)
        self._changed()
        return current

    def _check_member(self, obj, argument, populations_only=False):
        pool = self.populations if populations_only else self.populations + self.sources
        if not any(obj is p for p in pool):
            kind = "a population" if populations_only else "a population or spike source"
            raise ValueError(f"{argument} must be {kind} of this network, got {obj!r}")

    def connect(self, pre, post, rule: str | None = None, *, i=None, j=None, p: float | None = None,
                k: int | None = None, C: float | None = None, lam: float | None = None,
                autapses: bool | None = None, weight: Any = 1.0, delay: Any = 0.0, receptor: str | None = None,
                U: Any = None, D: Any = None, F: Any = None, seed=None, name: str | None = None) -> Projection:
        """Connect ``pre`` to ``post`` (a population) with synapses chosen by ``rule``.

        Rules: ``"explicit"`` (give ``i``, ``j``: presynaptic and
        postsynaptic index arrays; the default when they are given),
        ``"all_to_all"``, ``"one_to_one"``, ``"fixed_probability"`` (``p``),
        ``"fixed_indegree"`` (``k``), ``"distance"`` (probability
        ``C exp(-(D/lam)^2)`` from the populations' ``positions``).
        ``autapses`` (default: False onto the same population) allows ``i == j``.

        Per-synapse values ``weight`` (nA; onto a conductance-based
        population such as :class:`~neuro.neurons.LIFCond` a conductance in
        uS, >= 0, with ``receptor`` given), ``delay`` (ms), and the
        Tsodyks-Markram ``U``, ``D`` (ms), ``F`` (ms) (give all three for
        dynamic synapses) are scalars, arrays (one per synapse, in the order
        of ``i``/``j`` for explicit rules) or callables ``(rng, n) -> (n,)``.
        ``receptor``: ``"exc"`` or ``"inh"`` (default by the sign of the
        weights). Randomness from ``seed`` (default: the network's).
        Returns the :class:`~neuro.synapses.Projection`.
        """
        self._check_member(pre, "pre")
        self._check_member(post, "post", populations_only=True)
        if rule is None:
            rule = "explicit" if (i is not None or j is not None) else None
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if rule != "explicit" and (i is not None or j is not None):
            raise ValueError(f"i and j are for rule 'explicit', not {rule!r}")
        rng = self._rng if seed is None else make_rng(seed)
        if autapses is None:
            autapses = pre is not post
        if rule == "explicit":
            if i is None or j is None:
                raise ValueError("rule 'explicit' needs both i and j")
            ii, jj = np.asarray(i), np.asarray(j)
        elif rule == "all_to_all":
            ii, jj = np.divmod(np.arange(pre.n * post.n, dtype=np.int64), post.n)
            if not autapses:
                keep = ii != jj
                ii, jj = ii[keep], jj[keep]
        elif rule == "one_to_one":
            if pre.n != post.n:
                raise ValueError(f"one_to_one needs populations of equal size, got {pre.n} and {post.n}")
            ii = jj = np.arange(pre.n, dtype=np.int64)
        elif rule == "fixed_probability":
            if p is None:
                raise ValueError("rule 'fixed_probability' needs p")
            ii, jj = conn.fixed_probability(pre.n, post.n, p, autapses=autapses, seed=rng)
        elif rule == "fixed_indegree":
            if k is None:
                raise ValueError("rule 'fixed_indegree' needs k")
            ii, jj = conn.fixed_indegree(pre.n, post.n, k, autapses=autapses, seed=rng)
        else:
            if C is None or lam is None:
                raise ValueError("rule 'distance' needs C and lam")
            if getattr(pre, "positions", None) is None or post.positions is None:
                raise ValueError("rule 'distance' needs positions on both populations")
            ii, jj = conn.distance_probability(pre.positions, post.positions, C, lam, autapses=autapses, seed=rng)
        proj = Projection(pre, post, ii, jj, weight=weight, delay=delay, receptor=receptor, U=U, D=D, F=F,
                          name=self._name(name, "proj"), seed=rng)
        self.projections.append(proj)
        post._connect_incoming(proj)
        return self._add(proj)

    # ------------------------------------------------------------ monitors

    def _monitor(self, mon):
        self.monitors.append(mon)
        self._changed()
        return mon

    def monitor_spikes(self, source) -> SpikeMonitor:
        """Record every spike of ``source`` (population or spike source)."""
        self._check_member(source, "source")
        return self._monitor(SpikeMonitor(source))

    def monitor_state(self, pop: Population, variables="v", indices=None, every: float | None = None) -> StateMonitor:
        """Record ``variables`` (e.g. ``"v"``, ``["v", "I_e"]``, ``["v", "g_e"]``) of neurons ``indices`` every ``every`` ms (default dt)."""
        self._check_member(pop, "pop", populations_only=True)
        return self._monitor(StateMonitor(pop, variables, indices, every))

    def monitor_rate(self, source) -> RateMonitor:
        """Record the population rate (Hz) of ``source`` every step."""
        self._check_member(source, "source")
        return self._monitor(RateMonitor(source))

    def monitor_traces(self, source, tau: float, *, times=None, every: float | None = None) -> TraceMonitor:
        """Record exponentially filtered spike traces (time constant ``tau`` ms) at ``times`` or ``every`` ms."""
        self._check_member(source, "source")
        return self._monitor(TraceMonitor(source, tau, times, every))

    def add_hook(self, fn: Callable[["Network", int], None], every: int = 1) -> None:
        """Call ``fn(net, step)`` after every ``every``-th step (plasticity).

        ``fn`` sees the spikes of the step just done (``pop.spikes``, (B, N)
        bool) and may change ``projection.w`` ((S,), or (B, S) per trial) in place.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every must be a positive int (steps), got {every!r}")
        self.hooks.append((fn, int(every)))

    # ------------------------------------------------------------- running

    @property
    def t(self) -> float:
        """Current time, ms (the time of the next step)."""
        return self._step * self.dt

    def time_constants(self) -> dict[str, float]:
        """Smallest time constant of each kind in the network (name -> ms)."""
        taus: dict[str, float] = {}
        for pop in self.populations:
            for key, value in pop.time_constants().items():
                taus[f"{pop.name}.{key}"] = value
        for mon in self.monitors:
            if isinstance(mon, TraceMonitor):
                taus[f"trace of {mon.source.name}"] = mon.tau
        return taus

    def reset(self, batch_size: int = 1, seed=None) -> "Network":
        """Set the state for ``batch_size`` independent trials at time 0 and clear the monitors.

        ``seed``: int/Generator/None (default: the network's seed), each
        trial ``b`` drawing from child ``b`` of it; or a sequence of one seed
        per trial. Warns (:class:`~neuro.validation.DtWarning`) when ``dt``
        exceeds a time constant.
        """
        batch_size = self._check_n(batch_size, "batch_size")
        on_device = (self.backend or get_backend()) == "cupy"
        if on_device:  # refuse before any state changes
            from .device_engine import check_device

            check_device(self)
        self._check_trial_memory(batch_size)
        warn_dt(self.dt, self.time_constants())
        rngs = trial_generators(self.seed if seed is None else seed, batch_size)
        components = self.populations + self.sources
        per_trial = [rng.spawn(len(components)) for rng in rngs]
        for proj in self.projections:
            proj._prepare(self.dt, batch_size, self.dtype)
        # one ring-buffer length for all populations: slot ``step % L`` everywhere
        length = 1 + max((int(pr.delay_steps.max(initial=0)) for pr in self.projections), default=0)
        for c, comp in enumerate(components):
            rngs = [streams[c] for streams in per_trial]
            if isinstance(comp, Population):
                comp._reset(batch_size, self.dt, rngs, length, self.dtype)
            else:
                comp._reset(batch_size, self.dt, rngs)
        for mon in self.monitors:
            mon._reset(batch_size, self.dt)
        self.batch_size = batch_size
        self._step = 0
        self._stale = self._needs_reset = False
        self._device = None
        if on_device:
            from .device_engine import DeviceEngine

            self._device = DeviceEngine(self)
        return self

    def _check_trial_memory(self, batch_size: int) -> None:
        """Refuse a ``batch_size`` whose state (populations, ring buffers, synapse state) exceeds the memory."""
        item = np.dtype(self.dtype).itemsize
        length = 1 + max((int(np.round(pr.delay.max(initial=0) / self.dt)) for pr in self.projections), default=0)
        per_trial = sum(p.n * (item * (5 + 2 * length) + 9) for p in self.populations)
        per_trial += sum(pr.n_synapses * (2 * item + 8) for pr in self.projections if pr.dynamic)
        per_trial += sum(pr.n_synapses * pr.w.itemsize for pr in self.projections if pr.per_trial_weights)
        check_memory(batch_size * per_trial, f"batch_size={batch_size} (the state of every trial)")

    def _ensure_reset(self):
        if self._needs_reset:
            raise ValueError("the network changed since reset() (populations, connections, inputs or monitors "
                             "were added): call reset() before running it again")
        if self.batch_size is None:
            self.reset(1)
        elif self._stale:
            raise ValueError("the network ran in Brian2: call reset() before running it again")

    def _tick(self, currents: dict | None = None) -> None:
        n, dt, impl = self._step, self.dt, self.impl
        for mon in self.monitors:
            mon._start(n)
        for src in self.sources:
            src._advance(n)
        for pop in self.populations:
            pop._advance(n, dt, impl, None if currents is None else currents.get(pop.name))
        for proj in self.projections:
            proj._propagate(proj.pre.spikes, proj.post._buf[proj.receptor], n, dt, impl)
        for pop in self.populations:
            pop._deliver(n)
        for mon in self.monitors:
            mon._record(n)
        self._step = n + 1
        for fn, every in self.hooks:
            if self._step % every == 0:
                fn(self, n)

    def run(self, duration: float, *, engine: str | None = None, **engine_options) -> "Network":
        """Advance all trials by ``duration`` ms (``round(duration / dt)`` steps).

        Resets to one trial first if :meth:`reset` was not called (or the
        network changed since). ``engine="brian2"`` (default: the network's
        engine) runs it in Brian2 from time 0 instead (``target="numpy"`` or
        ``"cython"`` in ``engine_options``) and fills the same monitors.
        """
        duration = check_positive(duration, "duration")
        engine = self.engine if engine is None else engine
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self._ensure_reset()
        n_steps = int(round(duration / self.dt))
        recorders = [m for m in self.monitors if isinstance(m, StateMonitor)]
        check_memory(sum(m._nbytes(self._step, n_steps) for m in recorders),
                     f"duration={duration} (ms: the state monitors' records of {n_steps} steps)")
        if engine == "brian2":
            if self._device is not None:
                raise ValueError("engine 'brian2' runs on the host: reset a network with backend='numpy' for it")
            from . import brian2 as bridge

            bridge.run_network(self, n_steps, **engine_options)
            return self
        if engine_options:
            raise TypeError(f"unexpected options for engine 'neuro': {sorted(engine_options)}")
        for m in recorders:
            m._reserve(self._step, n_steps)
        if self._device is not None:
            self._device.run(n_steps)
            return self
        if self.fused and n_steps > 1:
            from . import engine as fused_engine

            if fused_engine.eligible(self):
                fused_engine.run_fused(self, n_steps)
                return self
        for _ in range(n_steps):
            self._tick()
        return self

    # -------------------------------------------------- component protocol

    @property
    def ports(self) -> dict[str, dict[str, int]]:
        """Coupling ports: inputs ``"<pop>.I"`` (current, nA, (B, N)); outputs ``"<name>.spikes"`` ((B, N) 0/1)."""
        return {
            "inputs": {f"{p.name}.I": p.n for p in self.populations},
            "outputs": {f"{s.name}.spikes": s.n for s in self.populations + self.sources},
        }

    def step(self, t: float | None = None, inputs: dict | None = None) -> dict[str, np.ndarray]:
        """Advance one step (the coupling protocol); ``inputs`` maps ``"<pop>.I"`` to (B, N) currents.

        Returns ``{"<name>.spikes": (B, N) float 0/1}`` for every population and source
        (CuPy arrays on the GPU backend, which takes CuPy or NumPy ``inputs``).
        """
        self._ensure_reset()
        xp = np if self._device is None else self._device.xp
        currents = None
        if inputs:
            currents = {}
            for port, value in inputs.items():
                name, _, kind = port.rpartition(".")
                pop = self._names.get(name)
                if kind != "I" or not isinstance(pop, Population):
                    raise ValueError(f"unknown input port {port!r}; ports: {sorted(self.ports['inputs'])}")
                value = xp.asarray(value, dtype=np.float64)
                if value.shape not in ((self.batch_size, pop.n), (pop.n,), ()):
                    raise ValueError(f"input {port!r} must have shape ({self.batch_size}, {pop.n}), got {value.shape}")
                currents[name] = value
        if self._device is not None:
            self._device.step(currents)
        else:
            self._tick(currents)
        return {f"{s.name}.spikes": s.spikes.astype(np.float64) for s in self.populations + self.sources}

    def set_state(self, pop: Population, var: str, value) -> None:
        """Set state variable ``var`` of ``pop`` (after :meth:`reset`) to ``value`` (broadcast to (B, N)).

        On the GPU backend ``value`` may be a CuPy or a NumPy array (copied to the device).
        """
        self._ensure_reset()
        if var not in pop.state:
            raise ValueError(f"{pop.name!r} has no state variable {var!r}; it has {sorted(pop.state)}")
        pop.state[var][...] = value
