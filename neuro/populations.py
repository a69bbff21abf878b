"""A population of neurons of one model, with its synaptic currents and ring buffers.

Made by :meth:`neuro.Network.population`. State arrays have shape (B, N):
``v`` (mV), the model's other variables (``u`` for Izhikevich, ``w`` for
AdEx), the synaptic state ``I_e`` and ``I_i`` (nA; ``g_e`` and ``g_i`` in uS
for the conductance-based :class:`~neuro.neurons.LIFCond` and
:class:`~neuro.neurons.AdExCond`), ``last_spike`` (int64, step of the last
spike). ``spikes`` (B, N) bool holds the spikes of the latest step.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from typing import Any

import numpy as np

from .inputs import Current
from .neurons import LIF, LIF_COND_KERNEL, LIF_KERNEL, LIFCond, NeuronModel, model_time_constants
from .synapses import NEVER
from .validation import check_finite, check_memory, timestep

__all__ = ["Population"]


def _implementation(kernel, impl: str, like):
    """The function of registered ``kernel`` that ``impl`` names; ``"cuda"``: its launcher bound to ``like``'s dtype."""
    if impl == "cuda":
        return functools.partial(kernel.cuda_launch, kernel.cuda_kernel(like.dtype))
    return kernel.cpu if impl == "cpu" else kernel.reference


class Population:
    """``n`` neurons of ``model``.

    Parameters
    ----------
    n : int
    model : a :class:`~neuro.neurons.NeuronModel` (``LIF()``, ``LIFCond()``, ``Izhikevich()``, ``AdEx()``,
        ``AdExCond()``)
    name : str
    v_init : initial membrane potential, mV: ``None`` (the model's rest/reset
        value), a scalar, an (N,) or (B, N) array, ``("uniform", low, high)``
        (drawn per trial from the trial's generator), or a callable
        ``(rng, (B, N)) -> array`` (called once per trial with shape (1, N)).
    positions : (N, 3) array or None, for distance-dependent connectivity
    """

    is_source = False

    def __init__(self, n: int, model: NeuronModel, name: str, v_init: Any = None, positions=None):
        if not isinstance(model, NeuronModel) or type(model) is NeuronModel:
            raise TypeError("model must be a neuro neuron model (LIF, LIFCond, Izhikevich, AdEx, AdExCond), "
                            f"got {type(model).__name__}")
        self.n, self.model, self.name = n, model, name
        # per neuron: float64 parameters, then per trial about six state arrays and the ring buffers
        check_memory(n * 8 * (len(dataclasses.fields(model)) + 6), f"n={n} (the parameters and state of population {name!r})")
        self.params = model.params(n)
        self.v_init = v_init
        self._check_v_init()
        if positions is not None:
            positions = np.asarray(positions, dtype=np.float64)
            if positions.ndim != 2 or positions.shape[0] != n:
                raise ValueError(f"positions must have shape ({n}, 3), got {positions.shape}")
        self.positions = positions
        self.currents: list[Current] = []
        # weak references: the network holds the projections, and Projection.post holds this
        # population, so strong ones would make a reference cycle (freed only by the cyclic GC)
        self._incoming: list[weakref.ref] = []
        self.state: dict[str, np.ndarray] = {}
        self.spikes = None

    @property
    def incoming(self) -> list:
        """The projections onto this population (of the network that holds them)."""
        return [p for p in (ref() for ref in self._incoming) if p is not None]

    def _connect_incoming(self, projection) -> None:
        self._incoming.append(weakref.ref(projection))

    def __repr__(self) -> str:
        return f"Population({self.name!r}, n={self.n}, model={type(self.model).__name__})"

    def __getattr__(self, key):  # state variables as attributes: pop.v, pop.I_e, ...
        state = self.__dict__.get("state")
        if state and key in state:
            return state[key]
        raise AttributeError(key)

    def __setattr__(self, key, value):  # pop.v = ... writes into the state (after reset)
        state = self.__dict__.get("state")
        if state and key in state:
            state[key][...] = value
        else:
            super().__setattr__(key, value)

    def _check_v_init(self):
        v = self.v_init
        if v is None or callable(v):
            return
        if isinstance(v, tuple):
            if len(v) != 3 or v[0] != "uniform" or not (np.isfinite(v[1:]).all() and v[1] <= v[2]):
                raise ValueError(f"v_init as a tuple must be ('uniform', low, high) with finite low <= high, got {v!r}")
            return
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim > 2 or (arr.ndim >= 1 and arr.shape[-1] != self.n):
            raise ValueError(f"v_init must be a scalar, ({self.n},) or (B, {self.n}), got shape {arr.shape}")
        check_finite(arr, "v_init")

    def time_constants(self) -> dict[str, float]:
        return model_time_constants(self.model, self.params)

    def _initial_v(self, batch_size: int, rngs: list) -> np.ndarray:
        v = self.v_init
        if v is None:
            default = self.params[self.model.default_v_init]
            return np.broadcast_to(default, (batch_size, self.n)).copy()
        if isinstance(v, tuple):
            return np.stack([rng.uniform(v[1], v[2], self.n) for rng in rngs])
        if callable(v):
            out = np.concatenate([np.asarray(v(rng, (1, self.n)), dtype=np.float64).reshape(1, self.n)
                                  for rng in rngs])
            check_finite(out, f"v_init of {self.name!r} (as the callable returned it)")
            return out
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[0] not in (1, batch_size):
            raise ValueError(f"v_init of {self.name!r} has {arr.shape[0]} trials, but batch_size is {batch_size}")
        return np.broadcast_to(arr, (batch_size, self.n)).copy()

    def _reset(self, batch_size: int, dt: float, rngs: list, buffer_length: int = 1, dtype=np.float64) -> None:
        B, N = batch_size, self.n
        v = self._initial_v(B, rngs)
        self.state = {"v": v.astype(dtype)}
        self.state.update({k: x.astype(dtype) for k, x in self.model.init_state(self.params, v).items()})
        syn_e, syn_i = self.model.synaptic_vars
        self.state[syn_e] = np.zeros((B, N), dtype)
        self.state[syn_i] = np.zeros((B, N), dtype)
        self.state["last_spike"] = np.full((B, N), NEVER, np.int64)
        self.spikes = np.zeros((B, N), dtype=bool)
        p = self._p = self.params  # the parameters a step reads (neuro.device_engine puts device copies here)
        self._decay_e = np.exp(-dt / p["tau_e"])
        self._decay_i = np.exp(-dt / p["tau_i"])
        self._ref_steps = timestep(p["t_ref"], dt)
        if isinstance(self.model, LIFCond):
            self._dt_tau = dt / p["tau_m"]
        elif isinstance(self.model, LIF):
            self._decay_m = np.exp(-dt / p["tau_m"])
        # ring buffers of pending synaptic input; slot ``step % L`` holds what arrives at ``step``
        self._buf = {r: np.zeros((buffer_length, B, N), dtype) for r in ("exc", "inh")}
        self._receptors = [(r, k) for r, k in zip(("exc", "inh"), self.model.synaptic_vars)
                           if any(pr.receptor == r for pr in self.incoming)]
        for c in self.currents:
            c._reset(B, dt)
        const = [c.amplitude for c in self.currents if c.constant]
        self._I_const = np.broadcast_to(sum(const, np.zeros(())), (B, N)).astype(dtype)
        self._varying = [c for c in self.currents if not c.constant]
        self._I_ext = self._I_const.copy()

    def _external(self, step: int, extra=None) -> np.ndarray:
        """The injected current at ``step`` (B, N): constant currents, waveforms, ``extra`` (port input)."""
        if not self._varying and extra is None:
            return self._I_const
        I = self._I_ext
        np.copyto(I, self._I_const)
        for c in self._varying:
            I += c.value(step)
        if extra is not None:
            I += extra
        return I

    def _advance(self, step: int, dt: float, impl: str, extra=None) -> np.ndarray:
        """Integrate, threshold, reset (steps 1-4 of :mod:`neuro.neurons`); returns ``spikes``.

        ``impl``: ``"cpu"`` (numba), ``"reference"`` (NumPy) or ``"cuda"`` (the
        kernels of ``spiking.cu`` on CuPy state, :mod:`neuro.device_engine`).
        """
        s, p = self.state, self._p
        I_ext = self._external(step, extra)
        syn_e, syn_i = self.model.synaptic_vars
        if isinstance(self.model, LIFCond):
            fn = _implementation(LIF_COND_KERNEL, impl, s["v"])
            fn(s["v"], s["g_e"], s["g_i"], I_ext, s["last_spike"], step, self._ref_steps, p["E_L"], p["R"],
               p["I_bg"], p["E_e"], p["E_i"], p["v_th"], p["v_reset"], self._dt_tau, self._decay_e, self._decay_i,
               self.spikes)
            return self.spikes
        if isinstance(self.model, LIF):
            fn = _implementation(LIF_KERNEL, impl, s["v"])
            fn(s["v"], s["I_e"], s["I_i"], I_ext, s["last_spike"], step, self._ref_steps, p["E_L"], p["R"],
               p["I_bg"], p["v_th"], p["v_reset"], self._decay_m, self._decay_e, self._decay_i, self.spikes)
            return self.spikes
        I = self.model.synaptic_current(s, p) + p["I_bg"] + I_ext
        active = (step - s["last_spike"]) >= self._ref_steps
        self.model.integrate(s, p, I, active, dt)
        s[syn_e] *= self._decay_e
        s[syn_i] *= self._decay_i
        np.logical_and(active, self.model.threshold(s, p), out=self.spikes)
        self.model.reset(s, p, self.spikes)
        s["last_spike"][self.spikes] = step
        return self.spikes

    def _deliver(self, step: int) -> None:
        """Add the synaptic input arriving at ``step`` to ``I_e``/``I_i`` (``g_e``/``g_i``) and clear its slot."""
        for receptor, key in self._receptors:
            buf = self._buf[receptor]
            slot = buf[step % buf.shape[0]]
            self.state[key] += slot
            slot[...] = 0.0
