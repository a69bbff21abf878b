"""``Simulator``: couples components through ports (the coupling protocol of DESIGN.md).

A component is anything with

* ``reset(batch_size, seed)``: set its state for ``batch_size`` independent trials;
* ``step(t, inputs) -> outputs``: advance one tick of ``dt`` ms; ``inputs``
  and ``outputs`` map port names to arrays with a leading batch axis (B, n);
* ``ports``: ``{"inputs": {name: size}, "outputs": {name: size}}``.

A :class:`neuro.Network` is one (inputs ``"<pop>.I"``, outputs
``"<name>.spikes"``); :class:`neuro.components.RateReadout` is a rate-based
one. Ports are addressed as ``"component.port"`` (split at the first dot).

Each tick ``n`` (time ``t = n dt``) the simulator, in this fixed order:

1. for each component in the order they were added: sums what flows into
   each of its input ports (external ``inputs`` of :meth:`Simulator.run`
   and connections; a connection from a component earlier in the order
   carries its output of this tick, one from a later component (or itself)
   its output of the previous tick, zeros at tick 0), then calls ``step``;
2. records the monitored ports;
3. calls the attached hooks (plasticity rules) whose period divides ``n + 1``.

Axes (the toolkit's convention): batch, then time, then units. External
inputs are ``(B, T, n)`` or ``(T, n)`` (the same for every trial); port
monitors give ``values`` ``(B, K, n)``.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np

from .backend import make_rng
from .monitors import joined
from .validation import check_positive

__all__ = ["PortMonitor", "Simulator"]


class PortMonitor:
    """Values of one output port every ``every`` ticks: ``values`` (B, K, n) float64, ``t`` (K,) ms (tick start).

    The record is stored time-first (a row per recorded tick); ``values`` is
    a view of it with the first two axes swapped (no copy per access, in
    general not C-contiguous).
    """

    def __init__(self, port: str, every: int, size: int = 0):
        self.port, self.every, self.size = port, every, size
        self.batch_size = 0
        self._t, self._values = [], []

    def _reset(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._t, self._values = [], []

    def _append(self, t: float, value) -> None:
        self._t.append(t)
        self._values.append(np.array(value, dtype=np.float64)[None])  # (1, B, n)

    def __repr__(self) -> str:
        return f"PortMonitor({self.port!r}, every={self.every}, {len(self._t)} samples)"

    @property
    def t(self) -> np.ndarray:
        return np.asarray(self._t, dtype=np.float64)

    @property
    def values(self) -> np.ndarray:
        """(B, K, n): a view of the stored (K, B, n) record."""
        return joined(self._values, (0, self.batch_size, self.size), np.float64).swapaxes(0, 1)


class Connection:
    def __init__(self, source, target, weight):
        self.source, self.target, self.weight = source, target, weight

    def apply(self, x):
        w = self.weight
        if w is None:
            return x
        if callable(w):
            return w(x)
        if np.ndim(w) == 0:
            return w * x
        return x @ w.T  # (B, n_source) -> (B, n_target), post = W @ pre


class Simulator:
    """Components advanced together with a shared clock ``dt`` (ms).

    Parameters
    ----------
    dt : float, ms; every component must use this step (a component with a
        ``dt`` attribute is checked when added)
    seed : int, Generator or None; trial randomness handed to each
        component's ``reset`` (a child generator per component)
    """

    def __init__(self, dt: float = 0.1, *, seed=None):
        self.dt = check_positive(dt, "dt")
        self.seed = seed
        self.components: dict[str, Any] = {}
        self.connections: list[Connection] = []
        self.hooks: list[tuple[Callable, int]] = []
        self.monitors: list[PortMonitor] = []
        self.outputs: dict[str, dict[str, np.ndarray]] = {}
        self.batch_size = None
        self.tick = 0

    def __repr__(self) -> str:
        comps = ", ".join(f"{name}: {type(c).__name__}" for name, c in self.components.items())
        return (f"Simulator(dt={self.dt:g} ms, components=[{comps}], {len(self.connections)} connections, "
                f"{len(self.monitors)} monitors, {len(self.hooks)} hooks, tick={self.tick})")

    # ------------------------------------------------------------ building

    def add(self, name: str, component):
        """Add ``component`` under ``name``; components update in the order they are added."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"name must be a non-empty str without '.', got {name!r}")
        if name in self.components:
            raise ValueError(f"a component named {name!r} exists already")
        for attr in ("reset", "step", "ports"):
            if not hasattr(component, attr):
                raise TypeError(f"component {name!r} lacks {attr!r}: a component needs reset, step and ports")
        cdt = getattr(component, "dt", None)
        if isinstance(cdt, numbers.Real) and not np.isclose(cdt, self.dt):
            raise ValueError(f"component {name!r} has dt={cdt} ms, the simulator dt={self.dt} ms")
        self.components[name] = component
        self.batch_size = None
        return component

    def _port(self, address: str, kind: str) -> tuple[str, str, int]:
        if not isinstance(address, str) or "." not in address:
            raise ValueError(f"a port is addressed as 'component.port', got {address!r}")
        comp, port = address.split(".", 1)
        if comp not in self.components:
            raise ValueError(f"unknown component {comp!r} in {address!r}; components: {list(self.components)}")
        ports = self.components[comp].ports[kind]
        if port not in ports:
            raise ValueError(f"{comp!r} has no {kind[:-1]} port {port!r}; it has {sorted(ports)}")
        return comp, port, int(ports[port])

    def connect(self, source: str, target: str, weight=None) -> None:
        """Feed output port ``source`` into input port ``target`` (``"component.port"``).

        ``weight``: ``None`` (sizes must match), a scalar, a matrix
        (n_target, n_source) (``target = W @ source``), or a callable
        ``(B, n_source) -> (B, n_target)``. Inputs from several connections add up.
        """
        s = self._port(source, "outputs")
        t = self._port(target, "inputs")
        if weight is None or np.ndim(weight) == 0 and not callable(weight):
            if s[2] != t[2]:
                raise ValueError(f"{source!r} has size {s[2]} but {target!r} has size {t[2]}: give a weight matrix")
        elif not callable(weight):
            weight = np.asarray(weight, dtype=np.float64)
            if weight.shape != (t[2], s[2]):
                raise ValueError(f"weight must have shape ({t[2]}, {s[2]}) (n_target, n_source), got {weight.shape}")
        self.connections.append(Connection(s, t, weight))

    def attach(self, hook: Callable[["Simulator", int], None], every: int = 1) -> None:
        """Call ``hook(sim, tick)`` after every ``every``-th tick (plasticity rules, schedules)."""
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every must be a positive int (ticks), got {every!r}")
        self.hooks.append((hook, int(every)))

    def monitor(self, port: str, every: int = 1) -> PortMonitor:
        """Record output port ``port`` every ``every`` ticks: ``values`` (B, K, n) after a run."""
        size = self._port(port, "outputs")[2]
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every must be a positive int (ticks), got {every!r}")
        mon = PortMonitor(port, int(every), size)
        self.monitors.append(mon)
        return mon

    # ------------------------------------------------------------- running

    @property
    def t(self) -> float:
        return self.tick * self.dt

    def reset(self, batch_size: int = 1, seed=None) -> "Simulator":
        """Reset every component for ``batch_size`` trials; clear the monitors."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        children = make_rng(self.seed if seed is None else seed).spawn(len(self.components))
        self.outputs = {}
        for (name, comp), rng in zip(self.components.items(), children):
            comp.reset(batch_size, rng)
            self.outputs[name] = {p: np.zeros((batch_size, n)) for p, n in comp.ports["outputs"].items()}
        for mon in self.monitors:
            mon._reset(int(batch_size))
        self.batch_size, self.tick = int(batch_size), 0
        return self

    def _external(self, inputs, n_ticks):
        prepared = []
        for address, value in (inputs or {}).items():
            comp, port, size = self._port(address, "inputs")
            if callable(value):
                prepared.append((comp, port, value, True))
                continue
            arr = np.asarray(value, dtype=np.float64)
            ok = (arr.ndim == 2 and arr.shape[1] == size) or (arr.ndim == 3 and arr.shape[0] in (1, self.batch_size)
                                                              and arr.shape[2] == size)
            if not ok:
                raise ValueError(f"input {address!r} must have shape (T, {size}) or ({self.batch_size}, T, {size}), "
                                 f"got {arr.shape}")
            if arr.shape[-2] < n_ticks:
                raise ValueError(f"input {address!r} has {arr.shape[-2]} ticks, the run needs {n_ticks}")
            prepared.append((comp, port, arr, False))
        return prepared

    def run(self, duration: float, inputs: dict | None = None) -> "Simulator":
        """Advance ``round(duration / dt)`` ticks.

        ``inputs`` maps ``"component.port"`` to an array (T, n) or (B, T, n)
        (value at tick k of this run: ``[..., k, :]``) or a callable
        ``t_ms -> array broadcastable to (B, n)``.
        """
        duration = check_positive(duration, "duration")
        if self.batch_size is None:
            self.reset(1)
        n_ticks = int(round(duration / self.dt))
        external = self._external(inputs, n_ticks)
        order = list(self.components)
        rank = {name: k for k, name in enumerate(order)}
        B = self.batch_size
        for k in range(n_ticks):
            t = self.tick * self.dt
            fresh: dict[str, dict] = {}
            for name in order:
                feed: dict[str, np.ndarray] = {}
                for comp, port, value, is_fn in external:
                    if comp == name:
                        x = value(t) if is_fn else value[..., k, :]
                        feed[port] = feed.get(port, 0.0) + np.broadcast_to(np.asarray(x, dtype=np.float64),
                                                                          (B, self.components[name].ports["inputs"][port]))
                for c in self.connections:
                    if c.target[0] != name:
                        continue
                    src_name, src_port = c.source[0], c.source[1]
                    now = rank[src_name] < rank[name]
                    x = (fresh[src_name] if now else self.outputs[src_name])[src_port]
                    feed[c.target[1]] = feed.get(c.target[1], 0.0) + c.apply(x)
                out = self.components[name].step(t, feed)
                fresh[name] = {p: out[p] for p in self.components[name].ports["outputs"]}
            self.outputs = fresh
            for mon in self.monitors:
                if self.tick % mon.every == 0:
                    comp, port = mon.port.split(".", 1)
                    mon._append(t, fresh[comp][port])
            self.tick += 1
            for hook, every in self.hooks:
                if self.tick % every == 0:
                    hook(self, self.tick - 1)
        return self
