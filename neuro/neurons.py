"""Neuron models: leaky integrate-and-fire (current- and conductance-based), Izhikevich, adaptive exponential IF.

Units: ms, mV, nA, MOhm (so ``R * I`` is in mV), nF, uS. Every parameter is a
scalar (shared by the population) or an array of shape ``(N,)`` (one value
per neuron).

All models share the synaptic and timing conventions of a population:

* two synaptic input currents, ``I_e`` and ``I_i`` (nA), decaying
  exponentially with ``tau_e`` and ``tau_i`` (ms); spikes arriving through
  a projection add their amplitude to one of them (its ``receptor``);
* a constant background current ``I_bg`` (nA) and any injected current;
* an absolute refractory period ``t_ref`` (ms) during which ``v`` is held at
  its reset value (Brian2's ``(unless refractory)``): a neuron that spiked
  at step ``n`` integrates again from step ``n + round_down(t_ref/dt)``.

One clock step ``n`` (time ``t = n dt``) of a population does, in this order
(the order of Brian2's schedule, so the two engines agree spike for spike):

1. ``I = I_e + I_i + I_bg + I_ext`` (held constant over the step);
2. advance the membrane state from ``t`` to ``t + dt`` with ``I`` (non-refractory neurons);
3. decay ``I_e *= exp(-dt/tau_e)``, ``I_i *= exp(-dt/tau_i)``;
4. threshold, reset, start of the refractory period;

and, after the projections have run, adds the synaptic input arriving at
step ``n`` to ``I_e``/``I_i`` (so it acts from step ``n + 1``).

The LIF update is exact for a current constant over the step::

    v(t + dt) = v_inf + (v(t) - v_inf) exp(-dt / tau_m),   v_inf = E_L + R I

and has a numba fast path and a CUDA kernel (kernel ``spiking_lif_step``,
``neuro/kernels/spiking.cu``) beside its NumPy reference. Izhikevich and AdEx use forward Euler (NumPy).

The conductance-based LIF (:class:`LIFCond`) keeps two synaptic
conductances ``g_e`` and ``g_i`` (uS) instead of ``I_e`` and ``I_i``, in the
same places and the same order (step 1 reads them, step 3 decays them, the
projections' input is added to them), and drives ``v`` with the current
``g_e (E_e - v) + g_i (E_i - v)`` (uS x mV = nA). With the conductances held
over the step the membrane equation is again linear in ``v`` and is
integrated exactly (kernel ``spiking_lif_cond_step``)::

    a = 1 + R (g_e + g_i)
    v_inf = (E_L + R (g_e E_e + g_i E_i + I_bg + I_ext)) / a
    v(t + dt) = v_inf + (v(t) - v_inf) exp(-a dt / tau_m)

This is Brian2's ``method="exponential_euler"`` for these equations, whose
conductances decay exactly as ours do. The ``exp`` here is :mod:`neuro.exp64`'s
(within 1 ulp of libm's; it lets the update loop vectorize), the same in the
NumPy reference, the numba kernels and CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numba
import numpy as np

from . import exp64
from .kernels import register
from .kernels.spiking import SOURCE as SPIKING_CU, launch_lif_cond_step, launch_lif_step
from .validation import as_param

__all__ = ["AdEx", "AdExCond", "Izhikevich", "LIF", "LIFCond", "NeuronModel"]

# ------------------------------------------------------------------ kernels


def _fire(v, active, v_th, v_reset, last_spike, step, spikes):
    """The spike test and reset shared by the LIF references: ``spikes`` ``(B, N)`` where active ``v > v_th``."""
    np.logical_and(active, v > v_th, out=spikes)
    np.copyto(v, np.broadcast_to(v_reset, v.shape), where=spikes)
    last_spike[spikes] = step
    return spikes


def lif_step_reference(v, I_e, I_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, v_th, v_reset,
                       decay_m, decay_e, decay_i, spikes):
    """One LIF step in place (NumPy reference).

    ``v, I_e, I_i, I_ext``: float (B, N); ``last_spike``: int64 (B, N), the
    step of each neuron's last spike; ``step``: the current step; the
    parameters are (N,) arrays (``decay_* = exp(-dt/tau_*)``); ``spikes``:
    bool (B, N), written. Returns ``spikes``.
    """
    I = I_e + I_i + I_bg + I_ext
    active = (step - last_spike) >= ref_steps
    v_inf = E_L + R * I
    np.copyto(v, v_inf + (v - v_inf) * decay_m, where=active)
    I_e *= decay_e
    I_i *= decay_i
    return _fire(v, active, v_th, v_reset, last_spike, step, spikes)


@numba.njit(cache=True, nogil=True)
def _lif_step_loop(v, I_e, I_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, v_th, v_reset,
                   decay_m, decay_e, decay_i, spikes):
    B, N = v.shape
    for b in range(B):
        for k in range(N):
            active = (step - last_spike[b, k]) >= ref_steps[k]
            vk = v[b, k]
            if active:
                v_inf = E_L[k] + R[k] * (I_e[b, k] + I_i[b, k] + I_bg[k] + I_ext[b, k])
                vk = v_inf + (vk - v_inf) * decay_m[k]
            I_e[b, k] *= decay_e[k]
            I_i[b, k] *= decay_i[k]
            s = active and vk > v_th[k]
            spikes[b, k] = s
            if s:
                vk = v_reset[k]
                last_spike[b, k] = step
            v[b, k] = vk


def lif_step_cpu(v, I_e, I_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, v_th, v_reset,
                 decay_m, decay_e, decay_i, spikes):
    """The same step as :func:`lif_step_reference`, one fused numba loop."""
    _lif_step_loop(v, I_e, I_i, I_ext, last_spike, np.int64(step), ref_steps, E_L, R, I_bg, v_th, v_reset,
                   decay_m, decay_e, decay_i, spikes)
    return spikes


LIF_KERNEL = register(
    "spiking_lif_step",
    reference=lif_step_reference,
    cpu=lif_step_cpu,
    cuda_source=SPIKING_CU, cuda_function="spiking_lif_step", cuda_launch=launch_lif_step,
    doc="one clock step of a batch of current-based LIF neurons with exponential synaptic currents",
)


@numba.njit(cache=True, nogil=True, inline="always")
def lif_cond_v(v, g_e, g_i, I, E_L, R, E_e, E_i, dt_tau):
    """``v`` after one step of a conductance-based LIF with ``g_e``, ``g_i`` and ``I`` held (scalars).

    ``dt_tau = dt / tau_m``; see :mod:`neuro.neurons` for the formula. Shared
    by the step kernel and the fused engine, so both do the same arithmetic.
    """
    a = 1.0 + R * (g_e + g_i)
    v_inf = (E_L + R * (g_e * E_e + g_i * E_i + I)) / a
    return v_inf + (v - v_inf) * exp64.exp(-dt_tau * a)


def lif_cond_step_reference(v, g_e, g_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, E_e, E_i, v_th, v_reset,
                            dt_tau, decay_e, decay_i, spikes):
    """One conductance-based LIF step in place (NumPy reference).

    As :func:`lif_step_reference` with conductances ``g_e, g_i`` (uS, (B, N))
    in place of the currents, reversal potentials ``E_e, E_i`` (mV, (N,))
    and ``dt_tau = dt / tau_m`` (N,) in place of ``decay_m``.
    """
    a = 1.0 + R * (g_e + g_i)
    v_inf = (E_L + R * (g_e * E_e + g_i * E_i + (I_bg + I_ext))) / a
    active = (step - last_spike) >= ref_steps
    np.copyto(v, v_inf + (v - v_inf) * exp64.exp_array(-dt_tau * a), where=active)
    g_e *= decay_e
    g_i *= decay_i
    return _fire(v, active, v_th, v_reset, last_spike, step, spikes)


@numba.njit(cache=True, nogil=True, error_model="numpy")  # a >= 1: no division by zero to check; the loop vectorizes
def _lif_cond_step_loop(v, g_e, g_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, E_e, E_i, v_th, v_reset,
                        dt_tau, decay_e, decay_i, spikes):
    B, N = v.shape
    for b in range(B):
        for k in range(N):
            active = (step - last_spike[b, k]) >= ref_steps[k]
            vk = v[b, k]
            if active:
                vk = lif_cond_v(vk, g_e[b, k], g_i[b, k], I_bg[k] + I_ext[b, k], E_L[k], R[k], E_e[k], E_i[k],
                                dt_tau[k])
            g_e[b, k] *= decay_e[k]
            g_i[b, k] *= decay_i[k]
            s = active and vk > v_th[k]
            spikes[b, k] = s
            if s:
                vk = v_reset[k]
                last_spike[b, k] = step
            v[b, k] = vk


def lif_cond_step_cpu(v, g_e, g_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, E_e, E_i, v_th, v_reset,
                      dt_tau, decay_e, decay_i, spikes):
    """The same step as :func:`lif_cond_step_reference`, one fused numba loop."""
    _lif_cond_step_loop(v, g_e, g_i, I_ext, last_spike, np.int64(step), ref_steps, E_L, R, I_bg, E_e, E_i, v_th,
                        v_reset, dt_tau, decay_e, decay_i, spikes)
    return spikes


LIF_COND_KERNEL = register(
    "spiking_lif_cond_step",
    reference=lif_cond_step_reference,
    cpu=lif_cond_step_cpu,
    cuda_source=SPIKING_CU, cuda_function="spiking_lif_cond_step", cuda_launch=launch_lif_cond_step,
    doc="one clock step of a batch of conductance-based LIF neurons with exponential synaptic conductances",
)


# ------------------------------------------------------------------- models


@dataclass
class NeuronModel:
    """Base of the neuron models: the parameters every population has.

    Parameters
    ----------
    tau_e, tau_i : float or (N,) array, ms
        Decay time constants of the excitatory and inhibitory synaptic currents.
    t_ref : float or (N,) array, ms
        Absolute refractory period.
    I_bg : float or (N,) array, nA
        Constant background current.
    """

    tau_e: Any = 3.0
    tau_i: Any = 6.0
    t_ref: Any = 0.0
    I_bg: Any = 0.0

    #: state variables besides the synaptic currents, ``v`` first
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    #: the synaptic state (excitatory, inhibitory): currents in nA, or conductances in uS
    synaptic_vars: ClassVar[tuple[str, str]] = ("I_e", "I_i")
    #: names of the time constants (checked against dt)
    time_constants: ClassVar[tuple[str, ...]] = ("tau_e", "tau_i")
    _positive: ClassVar[tuple[str, ...]] = ("tau_e", "tau_i")
    _nonneg: ClassVar[tuple[str, ...]] = ("t_ref",)
    default_v_init: ClassVar[str] = "v_reset"

    def params(self, n: int) -> dict[str, np.ndarray]:
        """Every parameter as an ``(N,)`` float64 array (validated)."""
        out = {}
        for f in fields(self):
            out[f.name] = as_param(getattr(self, f.name), n, f.name, positive=f.name in self._positive,
                                   nonneg=f.name in self._nonneg)
        self._check(out)
        return out

    def _check(self, p: dict[str, np.ndarray]) -> None:
        pass

    def init_state(self, p: dict[str, np.ndarray], v0: np.ndarray) -> dict[str, np.ndarray]:
        """The other state variables given ``v0`` (B, N)."""
        return {}

    def synaptic_current(self, state: dict, p: dict) -> np.ndarray:
        """The synaptic current driving ``v`` (nA, (B, N)): ``I_e + I_i``; ``g_e (E_e - v) + g_i (E_i - v)``
        for the conductance-based models."""
        e, i = self.synaptic_vars
        return state[e] + state[i]

    def integrate(self, state: dict, p: dict, I: np.ndarray, active: np.ndarray, dt: float) -> None:
        """Advance the state in place over one step with current ``I`` (B, N); only ``active`` neurons move ``v``."""
        raise NotImplementedError

    def threshold(self, state: dict, p: dict) -> np.ndarray:
        raise NotImplementedError

    def reset(self, state: dict, p: dict, spikes: np.ndarray) -> None:
        raise NotImplementedError


@dataclass
class LIF(NeuronModel):
    """Current-based leaky integrate-and-fire neuron.

    ``tau_m dv/dt = -(v - E_L) + R (I_e + I_i + I_bg + I_ext)``; a spike when
    ``v > v_th``, then ``v = v_reset`` and ``t_ref`` ms of refractoriness.
    Integrated exactly for a current held constant over each step.

    Parameters are scalars or ``(N,)`` arrays.

    Parameters
    ----------
    tau_m : membrane time constant, ms (default 30)
    R : input resistance, MOhm (default 1, so currents are in mV/MOhm = nA)
    E_L : resting potential, mV (default 0)
    v_th : threshold, mV (default 15); must exceed ``v_reset``
    v_reset : reset potential, mV (default 13.5)
    t_ref, I_bg, tau_e, tau_i : see :class:`NeuronModel`
    """

    tau_m: Any = 30.0
    R: Any = 1.0
    E_L: Any = 0.0
    v_th: Any = 15.0
    v_reset: Any = 13.5

    time_constants: ClassVar[tuple[str, ...]] = ("tau_m", "tau_e", "tau_i")
    _positive: ClassVar[tuple[str, ...]] = ("tau_m", "R", "tau_e", "tau_i")

    def _check(self, p):
        if np.any(p["v_th"] <= p["v_reset"]):
            raise ValueError("v_th must be above v_reset (threshold below or at reset)")

    def integrate(self, state, p, I, active, dt):
        v = state["v"]
        v_inf = p["E_L"] + p["R"] * I
        np.copyto(v, v_inf + (v - v_inf) * np.exp(-dt / p["tau_m"]), where=active)

    def threshold(self, state, p):
        return state["v"] > p["v_th"]

    def reset(self, state, p, spikes):
        np.copyto(state["v"], np.broadcast_to(p["v_reset"], spikes.shape), where=spikes)


@dataclass
class LIFCond(LIF):
    """Conductance-based leaky integrate-and-fire neuron (PyNN's ``IF_cond_exp``).

    ``tau_m dv/dt = -(v - E_L) + R (g_e (E_e - v) + g_i (E_i - v) + I_bg + I_ext)``,
    ``dg_e/dt = -g_e / tau_e``, ``dg_i/dt = -g_i / tau_i``; a spike when
    ``v > v_th``, then ``v = v_reset`` and ``t_ref`` ms of refractoriness.
    A presynaptic spike through a projection with ``receptor="exc"``
    (``"inh"``) adds its weight, a conductance in uS (>= 0), to ``g_e``
    (``g_i``). The state holds ``g_e`` and ``g_i`` where the current-based
    models hold ``I_e`` and ``I_i``.

    Integration: the conductances (and currents) are held over each step,
    which makes the membrane equation linear in ``v``; it is solved exactly
    (exponential Euler, ``v -> v_inf + (v - v_inf) exp(-(1 + R g) dt / tau_m)``
    with ``g = g_e + g_i``; see :mod:`neuro.neurons`), then the conductances
    decay exactly. This is Brian2's ``method="exponential_euler"``.

    Parameters are scalars or ``(N,)`` arrays; the defaults are those of the COBA
    network of Vogels & Abbott (2005) / Brette et al. (2007).

    Parameters
    ----------
    tau_m : membrane time constant, ms (default 20)
    R : input resistance, MOhm (default 100, a leak conductance of 10 nS)
    E_L : leak reversal potential, mV (default -60)
    E_e, E_i : excitatory and inhibitory reversal potentials, mV (default 0, -80)
    v_th : threshold, mV (default -50); must exceed ``v_reset``
    v_reset : reset potential, mV (default -60)
    tau_e, tau_i : conductance decay time constants, ms (default 5, 10)
    t_ref, I_bg : see :class:`NeuronModel`
    """

    tau_e: Any = 5.0
    tau_i: Any = 10.0
    tau_m: Any = 20.0
    R: Any = 100.0
    E_L: Any = -60.0
    v_th: Any = -50.0
    v_reset: Any = -60.0
    E_e: Any = 0.0
    E_i: Any = -80.0

    synaptic_vars: ClassVar[tuple[str, str]] = ("g_e", "g_i")

    def integrate(self, state, p, I, active, dt):  # the population calls the kernel instead (it needs g_e, g_i)
        raise NotImplementedError("LIFCond is advanced by the spiking_lif_cond_step kernel")


@dataclass
class Izhikevich(NeuronModel):
    """Izhikevich (2003) neuron, forward Euler.

    ``dv/dt = 0.04 v^2 + 5 v + 140 - u + gain * I``, ``du/dt = a (b v - u)``;
    when ``v >= v_peak``: ``v = c``, ``u += d``. ``v`` in mV, time in ms; the
    input current ``I`` (nA) enters multiplied by ``gain`` (mV/ms per nA,
    default 1, Izhikevich's dimensionless ``I``). Defaults: regular spiking
    (a=0.02, b=0.2, c=-65, d=8). ``v`` starts at ``c``, ``u`` at ``b v``.
    """

    a: Any = 0.02
    b: Any = 0.2
    c: Any = -65.0
    d: Any = 8.0
    v_peak: Any = 30.0
    gain: Any = 1.0

    state_vars: ClassVar[tuple[str, ...]] = ("v", "u")
    default_v_init: ClassVar[str] = "c"

    def _check(self, p):
        if np.any(p["v_peak"] <= p["c"]):
            raise ValueError("v_peak must be above the reset c (threshold below or at reset)")

    def init_state(self, p, v0):
        return {"u": p["b"] * v0}

    def integrate(self, state, p, I, active, dt):
        v, u = state["v"], state["u"]
        dv = 0.04 * v * v + 5.0 * v + 140.0 - u + p["gain"] * I
        du = p["a"] * (p["b"] * v - u)
        np.copyto(v, v + dt * dv, where=active)
        u += dt * du

    def threshold(self, state, p):
        return state["v"] >= p["v_peak"]

    def reset(self, state, p, spikes):
        np.copyto(state["v"], np.broadcast_to(p["c"], spikes.shape), where=spikes)
        state["u"] += np.where(spikes, p["d"], 0.0)


@dataclass
class AdEx(NeuronModel):
    """Adaptive exponential integrate-and-fire (Brette & Gerstner 2005), forward Euler.

    ``C dv/dt = -g_L (v - E_L) + g_L Delta_T exp((v - V_T)/Delta_T) - w + I``,
    ``tau_w dw/dt = a (v - E_L) - w``; when ``v > v_peak``: ``v = v_reset``,
    ``w += b``. Units: C nF, g_L and a uS, b and w nA, voltages mV, tau_w ms.
    Defaults are Brette & Gerstner's (C=0.281, g_L=0.030, E_L=-70.6,
    V_T=-50.4, Delta_T=2, tau_w=144, a=0.004, b=0.0805, v_reset=-70.6,
    v_peak=0). ``v`` starts at ``E_L``, ``w`` at 0.
    """

    C: Any = 0.281
    g_L: Any = 0.030
    E_L: Any = -70.6
    V_T: Any = -50.4
    Delta_T: Any = 2.0
    tau_w: Any = 144.0
    a: Any = 0.004
    b: Any = 0.0805
    v_reset: Any = -70.6
    v_peak: Any = 0.0

    state_vars: ClassVar[tuple[str, ...]] = ("v", "w")
    time_constants: ClassVar[tuple[str, ...]] = ("tau_w", "tau_e", "tau_i")
    _positive: ClassVar[tuple[str, ...]] = ("C", "g_L", "Delta_T", "tau_w", "tau_e", "tau_i")
    default_v_init: ClassVar[str] = "E_L"

    def _check(self, p):
        if np.any(p["v_peak"] <= p["v_reset"]):
            raise ValueError("v_peak must be above v_reset (threshold below or at reset)")

    def init_state(self, p, v0):
        return {"w": np.zeros_like(v0)}

    def integrate(self, state, p, I, active, dt):
        v, w = state["v"], state["w"]
        arg = np.minimum((v - p["V_T"]) / p["Delta_T"], 30.0)  # caps the exponential above v_peak
        dv = (-p["g_L"] * (v - p["E_L"]) + p["g_L"] * p["Delta_T"] * np.exp(arg) - w + I) / p["C"]
        dw = (p["a"] * (v - p["E_L"]) - w) / p["tau_w"]
        np.copyto(v, v + dt * dv, where=active)
        w += dt * dw

    def threshold(self, state, p):
        return state["v"] > p["v_peak"]

    def reset(self, state, p, spikes):
        np.copyto(state["v"], np.broadcast_to(p["v_reset"], spikes.shape), where=spikes)
        state["w"] += np.where(spikes, p["b"], 0.0)


@dataclass
class AdExCond(AdEx):
    """Adaptive exponential IF with conductance-based synapses (PyNN's ``EIF_cond_exp_isfa_ista``), forward Euler.

    As :class:`AdEx`, with the synaptic current ``g_e (E_e - v) + g_i (E_i - v)``
    (``g_e``, ``g_i`` in uS, reversal potentials ``E_e``, ``E_i`` in mV,
    default 0 and -80) in place of ``I_e + I_i``; the conductances decay
    exactly with ``tau_e``, ``tau_i`` (default 5 and 10 ms) and a spike
    through a projection adds its weight (uS, >= 0; give ``receptor``) to
    ``g_e`` or ``g_i``. Integration: forward Euler for ``v`` and ``w`` as in
    :class:`AdEx`, with the conductances at the start of the step (Brian2's
    ``method="euler"``).
    """

    tau_e: Any = 5.0
    tau_i: Any = 10.0
    E_e: Any = 0.0
    E_i: Any = -80.0

    synaptic_vars: ClassVar[tuple[str, str]] = ("g_e", "g_i")

    def synaptic_current(self, state, p):
        v = state["v"]
        return state["g_e"] * (p["E_e"] - v) + state["g_i"] * (p["E_i"] - v)


def model_time_constants(model: NeuronModel, p: dict[str, np.ndarray]) -> dict[str, float]:
    """Smallest value of each time constant of ``model`` (name -> ms), for the dt warning."""
    out = {name: float(p[name].min()) for name in model.time_constants}
    if isinstance(model, AdEx):
        out["C/g_L"] = float((p["C"] / p["g_L"]).min())
    return out
