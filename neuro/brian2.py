"""Brian2 bridge: build a :class:`neuro.Network` as Brian2 objects and run it there.

Imported only when used (``net.run(duration, engine="brian2")``); importing
``neuro`` never imports Brian2. The bridge is the reference our engine is
tested against, and lets users pick Brian2's code generation.

What is translated, trial by trial (one Brian2 network per trial):

* LIF populations with per-neuron parameters, refractoriness
  (``unless refractory``) and the two exponential synaptic currents, all
  integrated by Brian2 with ``method="exponential_euler"``, which is exact
  for these linear equations with the other variables held over the step
  (``method="exact"`` gives the same numbers but asks sympy for a 3x3 matrix
  exponential that takes ~20 s). Our LIF holds the input current constant
  over a step; Brian2 does the same here because the current driving ``v``
  is a parameter ``I_hold`` set to ``I_e + I_i`` before each step
  (``run_regularly(..., when="before_groups")``);
* conductance-based LIF populations (:class:`~neuro.neurons.LIFCond`) the
  same way: ``g_e (E_e - v) + g_i (E_i - v)`` with the conductances held
  over the step in ``g_e_hold``/``g_i_hold``, which leaves ``v``'s equation
  linear, so ``exponential_euler`` solves it exactly as our kernel does;
  their synaptic weights become conductances (uS);
* Izhikevich, AdEx and AdExCond populations, integrated by Brian2 with
  ``method="euler"`` as ours are; their synaptic currents decay exactly in
  the same ``run_regularly`` (one method per group in Brian2); AdExCond's
  conductances drive ``v`` directly and decay in a ``run_regularly`` after
  the state update;
* injected currents: constants, and waveforms as ``TimedArray`` (their
  sample interval must be a multiple of dt);
* spike sources: their spikes are drawn by our engine's own code (so
  Poisson trains are the same in both engines) and handed to Brian2 as
  ``SpikeGeneratorGroup``;
* static and Tsodyks-Markram synapses with per-synapse delays and parameters
  (per-trial weights ``(B, S)``: trial ``b`` gets row ``b``; hooks, hence plasticity, do not run);
* monitors: spikes, rates and traces (from Brian2's ``SpikeMonitor``) and
  state variables (Brian2's ``StateMonitor``, same times).

Units at the boundary: ms, mV, nA, MOhm, uS become Brian2 quantities.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

import brian2 as b2

from .monitors import RateMonitor, SpikeMonitor, StateMonitor, TraceMonitor
from .neurons import LIF, AdEx, AdExCond, Izhikevich, LIFCond

__all__ = ["build_trial", "run_network"]

# The constants of both LIF models, one a line (Brian2 reads the declarations in any order)
_LIF_CONSTANTS = """
tau_m : second (constant)
tau_e : second (constant)
tau_i : second (constant)
t_ref : second (constant)
E_L : volt (constant)
R : ohm (constant)
I_bg : amp (constant)
v_th : volt (constant)
v_reset : volt (constant)
"""

_LIF_EQS = """
dv/dt = (E_L - v + R*(I_hold + I_bg + I_ext))/tau_m : volt (unless refractory)
dI_e/dt = -I_e/tau_e : amp
dI_i/dt = -I_i/tau_i : amp
I_hold : amp
I_ext : amp
""" + _LIF_CONSTANTS

_LIF_COND_EQS = """
dv/dt = (E_L - v + R*(g_e_hold*(E_e - v) + g_i_hold*(E_i - v) + I_bg + I_ext))/tau_m : volt (unless refractory)
dg_e/dt = -g_e/tau_e : siemens
dg_i/dt = -g_i/tau_i : siemens
g_e_hold : siemens
g_i_hold : siemens
I_ext : amp
E_e : volt (constant)
E_i : volt (constant)
""" + _LIF_CONSTANTS

# Izhikevich and AdEx: forward Euler as in neuro.neurons; the synaptic currents decay exactly in
# run_regularly (Brian2 takes one integration method per group, and Euler would not decay them exactly)
_HOLD_DECAY = "I_hold = I_e + I_i\nI_e = I_e*exp(-dt/tau_e)\nI_i = I_i*exp(-dt/tau_i)"

_COMMON = """
I_e : amp
I_i : amp
I_hold : amp
I_ext : amp
tau_e : second (constant)
tau_i : second (constant)
t_ref : second (constant)
I_bg : amp (constant)
"""

_IZH_EQS = """
dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u + gain*(I_hold + I_bg + I_ext))/ms : volt (unless refractory)
du/dt = a*(b*v - u)/ms : volt
a : 1 (constant)
b : 1 (constant)
c : volt (constant)
d : volt (constant)
v_peak : volt (constant)
gain : ohm (constant)
""" + _COMMON

_ADEX_EQS = """
dv/dt = (-g_L*(v - E_L) + g_L*Delta_T*exp(clip((v - V_T)/Delta_T, -1e9, 30)) - w + I_hold + I_bg + I_ext)/C : volt (unless refractory)
dw/dt = (a*(v - E_L) - w)/tau_w : amp
C : farad (constant)
g_L : siemens (constant)
E_L : volt (constant)
V_T : volt (constant)
Delta_T : volt (constant)
tau_w : second (constant)
a : siemens (constant)
b : amp (constant)
v_reset : volt (constant)
v_peak : volt (constant)
""" + _COMMON

# AdExCond: v is integrated (groups) with the conductances of the step's start, which decay exactly
# after it (run_regularly when="after_groups", before thresholds and synapses: our order). A hold variable
# as for the currents would not do: on the numpy target "g_e_hold = g_e" then "g_e = ..." aliases the two.
_COND_DECAY = "g_e = g_e*exp(-dt/tau_e)\ng_i = g_i*exp(-dt/tau_i)"
_COND_COMMON = """
g_e : siemens
g_i : siemens
I_ext : amp
tau_e : second (constant)
tau_i : second (constant)
t_ref : second (constant)
I_bg : amp (constant)
E_e : volt (constant)
E_i : volt (constant)
"""
_ADEX_COND_EQS = _ADEX_EQS.replace(_COMMON, _COND_COMMON).replace(
    "- w + I_hold +", "- w + g_e*(E_e - v) + g_i*(E_i - v) +")

# synaptic variable names must not clash with the neurons' (u of Izhikevich, w of AdEx)
_TM_MODEL = """
w_syn : amp
U_tm : 1
tau_rec : second
tau_facil : second
u_tm : 1
R_tm : 1
tlast : second
"""

_TM_ON_PRE = """
R_tm = 1 + (R_tm - u_tm*R_tm - 1)*exp(-(t - tlast)/tau_rec)
u_tm = U_tm + u_tm*(1 - U_tm)*exp(-(t - tlast)/tau_facil)
{target}_post += w_syn*u_tm*R_tm
tlast = t
"""

_UNITS = {"v": "mV", "I_e": "nA", "I_i": "nA", "g_e": "uS", "g_i": "uS", "u": "mV", "w": "nA"}
# parameter -> Brian2 unit name, per model
_PARAM_UNITS = {
    "tau_m": "ms", "tau_e": "ms", "tau_i": "ms", "t_ref": "ms", "tau_w": "ms", "E_L": "mV", "v_th": "mV",
    "v_reset": "mV", "c": "mV", "d": "mV", "v_peak": "mV", "V_T": "mV", "Delta_T": "mV", "E_e": "mV", "E_i": "mV",
    "R": "Mohm",
    "gain": "Mohm", "I_bg": "nA", "b": "nA", "C": "nF", "g_L": "uS",
}


@contextmanager
def _target(target: str):
    if target not in ("numpy", "cython"):
        raise ValueError(f"target must be 'numpy' or 'cython', got {target!r}")
    previous = b2.prefs.codegen.target
    b2.prefs.codegen.target = target
    try:
        yield
    finally:
        b2.prefs.codegen.target = previous


def _check_supported(net) -> None:
    for pop in net.populations:
        if type(pop.model) not in (LIF, LIFCond, Izhikevich, AdEx, AdExCond):
            raise NotImplementedError(f"the Brian2 bridge has no translation of {type(pop.model).__name__}")
        for c in pop.currents:
            if not c.constant and abs(c._every_steps * net.dt - c.every) > 1e-9 * c.every:
                raise NotImplementedError("the Brian2 bridge needs waveform sample intervals (every) that are "
                                          "whole multiples of dt")
    for mon in net.monitors:
        if isinstance(mon, StateMonitor):
            bad = [v for v in mon.variables if v not in _UNITS or v not in mon.source.state]
            if bad:
                raise NotImplementedError(f"the Brian2 bridge records {sorted(_UNITS)} only, not {bad}")
    if net.hooks:
        raise NotImplementedError("hooks (plasticity) run in the 'neuro' engine only")


def source_spikes(net, n_steps: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Draw the spikes of every spike source over ``n_steps`` with our engine's code.

    Returns name -> (steps, trials, indices) int64 arrays.
    """
    out = {}
    for src in net.sources:
        steps, trials, idx = [], [], []
        for n in range(n_steps):
            s = src._advance(n)
            if s.any():
                b, i = np.nonzero(s)
                steps.append(np.full(len(b), n, np.int64))
                trials.append(b)
                idx.append(i)
        cat = (lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64))
        out[src.name] = (cat(steps), cat(trials), cat(idx))
    return out


def _injected(pop, trial: int) -> tuple[str, dict]:
    """Equation of ``I_ext`` (constant currents + one TimedArray per waveform, 0 after its end) and its namespace."""
    namespace, terms = {}, ""
    for k, c in enumerate(c for c in pop.currents if not c.constant):
        values = c.amplitude[trial] if c.amplitude.ndim == 3 and c.amplitude.shape[0] > 1 else c.amplitude.reshape(
            c.amplitude.shape[-2:])
        values = np.concatenate([values, np.zeros((1, pop.n))])  # a TimedArray holds its last value
        name = f"wave_{pop.name}_{k}"
        namespace[name] = b2.TimedArray(values * b2.nA, dt=c.every * b2.ms, name=name)
        terms += f" + {name}(t, i)"
    return f"I_ext = I_const{terms} : amp\nI_const : amp", namespace


def _neuron_group(pop, trial: int, dt):
    """A Brian2 NeuronGroup for trial ``trial`` of population ``pop`` (its state at reset)."""
    model, p = pop.model, pop.params
    ext, namespace = _injected(pop, trial)
    eqs = {LIF: _LIF_EQS, LIFCond: _LIF_COND_EQS, Izhikevich: _IZH_EQS, AdEx: _ADEX_EQS,
           AdExCond: _ADEX_COND_EQS}[type(model)]
    eqs = eqs.replace("I_ext : amp", ext)
    if isinstance(model, LIFCond):
        G = b2.NeuronGroup(pop.n, eqs, threshold="v > v_th", reset="v = v_reset", refractory="t_ref",
                           method="exponential_euler", dt=dt, name=f"pop_{pop.name}", namespace=namespace)
        G.run_regularly("g_e_hold = g_e\ng_i_hold = g_i", when="before_groups", name=f"hold_{pop.name}")
    elif isinstance(model, LIF):
        G = b2.NeuronGroup(pop.n, eqs, threshold="v > v_th", reset="v = v_reset", refractory="t_ref",
                           method="exponential_euler", dt=dt, name=f"pop_{pop.name}", namespace=namespace)
        G.run_regularly("I_hold = I_e + I_i", when="before_groups", name=f"hold_{pop.name}")
    elif isinstance(model, Izhikevich):
        G = b2.NeuronGroup(pop.n, eqs, threshold="v >= v_peak", reset="v = c\nu += d", refractory="t_ref",
                           method="euler", dt=dt, name=f"pop_{pop.name}", namespace=namespace)
        G.a, G.b = p["a"], p["b"]
        G.u = pop.state["u"][trial] * b2.mV
    else:
        G = b2.NeuronGroup(pop.n, eqs, threshold="v > v_peak", reset="v = v_reset\nw += b",
                           refractory="t_ref", method="euler", dt=dt, name=f"pop_{pop.name}", namespace=namespace)
        G.a = p["a"] * b2.uS
        G.w = pop.state["w"][trial] * b2.nA
    if isinstance(model, AdExCond):
        G.run_regularly(_COND_DECAY, when="after_groups", name=f"decay_{pop.name}")
    elif not isinstance(model, LIF):
        G.run_regularly(_HOLD_DECAY, when="before_groups", name=f"hold_{pop.name}")
    skip = {"a", "b"} if isinstance(model, Izhikevich) else {"a"}  # set above (their units differ by model)
    for key, value in p.items():
        if key in _PARAM_UNITS and key not in skip:
            setattr(G, key, value * getattr(b2, _PARAM_UNITS[key]))
    G.I_const = np.broadcast_to(pop._I_const[trial], (pop.n,)) * b2.nA
    G.v = pop.state["v"][trial] * b2.mV
    for var in model.synaptic_vars:
        setattr(G, var, pop.state[var][trial] * getattr(b2, _UNITS[var]))
    return G


def build_trial(net, trial: int, spikes: dict, *, record_spikes=(), record_state=()) -> tuple:
    """Brian2 objects for trial ``trial`` of ``net`` (after ``net.reset``).

    ``spikes``: from :func:`source_spikes`. ``record_spikes``: names of
    populations/sources to record; ``record_state``: our StateMonitors.
    Returns ``(network, groups, spike_monitors, state_monitors)`` (dicts by name / by monitor index).
    """
    dt = net.dt * b2.ms
    ms = b2.ms
    groups = {}
    objects = []
    for pop in net.populations:
        G = _neuron_group(pop, trial, dt)
        groups[pop.name] = G
        objects.append(G)
    for src in net.sources:
        steps, trials, idx = spikes[src.name]
        sel = trials == trial
        gen = b2.SpikeGeneratorGroup(src.n, idx[sel], steps[sel] * net.dt * ms, dt=dt, name=f"src_{src.name}")
        groups[src.name] = gen
        objects.append(gen)
    for proj in net.projections:
        target = proj.post.model.synaptic_vars[0 if proj.receptor == "exc" else 1]
        unit = _UNITS[target]  # nA onto currents, uS onto conductances
        w_model = f"w_syn : {'amp' if unit == 'nA' else 'siemens'}"
        if proj.dynamic:
            S = b2.Synapses(groups[proj.pre.name], groups[proj.post.name],
                            model=_TM_MODEL.replace("w_syn : amp", w_model),
                            on_pre=_TM_ON_PRE.format(target=target), dt=dt, name=f"syn_{proj.name}")
        else:
            S = b2.Synapses(groups[proj.pre.name], groups[proj.post.name], model=w_model,
                            on_pre=f"{target}_post += w_syn", dt=dt, name=f"syn_{proj.name}")
        S.connect(i=proj.i, j=proj.j)
        S.w_syn = (proj.w if proj.w.ndim == 1 else proj.w[trial]) * getattr(b2, unit)  # (B, S): per-trial weights
        S.delay = proj.delay_steps * net.dt * ms
        if proj.dynamic:
            S.U_tm, S.tau_rec, S.tau_facil = proj.U, proj.D * ms, proj.F * ms
            S.u_tm, S.R_tm = proj.U, 1.0
            S.tlast = -1e9 * b2.second  # "never": exp(-(t - tlast)/tau) == 0 at the first spike
        objects.append(S)
    spike_mons = {}
    for name in record_spikes:
        spike_mons[name] = b2.SpikeMonitor(groups[name], name=f"spikes_{name}")
        objects.append(spike_mons[name])
    state_mons = {}
    for k, mon in enumerate(record_state):
        every = mon._every_steps * net.dt * ms
        state_mons[k] = b2.StateMonitor(groups[mon.source.name], mon.variables, record=mon.indices, dt=every,
                                        name=f"state_{k}")
        objects.append(state_mons[k])
    return b2.Network(*objects), groups, spike_mons, state_mons


def run_network(net, n_steps: int, *, target: str = "numpy") -> None:
    """Run ``net`` (reset, at time 0) for ``n_steps`` steps in Brian2 and fill its monitors.

    ``target``: Brian2's code generation target, ``"numpy"`` or ``"cython"``.
    Afterwards ``net`` must be reset before it runs again.
    """
    if net._step != 0:
        raise ValueError("engine='brian2' runs from time 0: call net.reset() before run()")
    _check_supported(net)
    B = net.batch_size
    spikes = source_spikes(net, n_steps)
    spike_names = sorted({m.source.name for m in net.monitors
                          if isinstance(m, (SpikeMonitor, RateMonitor, TraceMonitor))})
    state_mons = [m for m in net.monitors if isinstance(m, StateMonitor)]
    recorded = {name: ([], [], []) for name in spike_names}
    states = [{v: [] for v in m.variables} for m in state_mons]
    state_steps = [None] * len(state_mons)
    with _target(target):
        for b in range(B):
            b2net, groups, smons, stmons = build_trial(net, b, spikes, record_spikes=spike_names,
                                                       record_state=state_mons)
            b2net.run(n_steps * net.dt * b2.ms)
            for name, mon in smons.items():
                steps = np.round(np.asarray(mon.t / b2.ms) / net.dt).astype(np.int64)
                recorded[name][0].append(steps)
                recorded[name][1].append(np.full(len(steps), b, np.int64))
                recorded[name][2].append(np.asarray(mon.i[:], dtype=np.int64))
            for k, mon in stmons.items():
                state_steps[k] = np.round(np.asarray(mon.t / b2.ms) / net.dt).astype(np.int64)
                for var in state_mons[k].variables:
                    unit = getattr(b2, _UNITS[var])
                    states[k][var].append(np.asarray(getattr(mon, var) / unit).T)  # (K, n)
    for mon in net.monitors:
        if isinstance(mon, StateMonitor):
            k = state_mons.index(mon)
            mon._set(state_steps[k], {v: np.stack(states[k][v], axis=1) for v in mon.variables})
            continue
        steps, trials, idx = (np.concatenate(x) for x in recorded[mon.source.name])
        if isinstance(mon, SpikeMonitor):
            mon._set(steps, trials, idx)
        elif isinstance(mon, RateMonitor):
            counts = np.zeros((n_steps, B), np.int64)
            np.add.at(counts, (steps, trials), 1)
            mon._set(counts)
        else:
            raster = np.zeros((n_steps, B, mon.source.n), dtype=bool)
            raster[steps, trials, idx] = True
            mon._set_from_spikes(raster)
    net._step = n_steps
    net._stale = True
