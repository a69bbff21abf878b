"""The CUBA and COBA benchmark networks of Brette et al. (2007), in neuro and in plain Brian2.

Shared by ``examples/cuba.py``, ``examples/coba.py``, the benchmark
``benchmarks/bench_brette2007.py`` and the statistics test.

Both networks: 4000 LIF neurons, 3200 excitatory and 800 inhibitory; each
ordered pair (autapses included, as Brian2's ``connect(p=...)``) connected
with probability 0.02, no delays; ``tau_m`` 20 ms, threshold -50 mV, reset
-60 mV, refractory period 5 ms, synaptic time constants 5 ms (exc) and 10 ms
(inh), dt 0.1 ms.

* CUBA (Brian2's ``examples/CUBA.py``): current-based, ``E_L = -49 mV``
  (above threshold: the drive), weights 1.62 mV and -9 mV of depolarization
  (``R = 1 MOhm``, so 1.62 and -9 nA); ``v`` starts uniform in [-60, -50] mV.
* COBA (Brian's COBA benchmark; Vogels & Abbott 2005): conductance-based
  (:class:`neuro.LIFCond`), ``E_L = -60 mV``, ``E_e = 0``, ``E_i = -80 mV``,
  leak conductance 10 nS (``R = 100 MOhm``), weights 6 nS and 67 nS
  (0.006 and 0.067 uS), a background current of 0.2 nA (20 mV, which
  sustains the activity); ``v`` starts normal(-55, 5) mV.

The Brian2 versions are written as a Brian2 user writes them (one
``NeuronGroup`` of 4000 neurons, Brian2's own random connectivity and
initial values from ``brian2.seed``); CUBA uses ``method="exact"`` as
Brian2's script does (the synaptic currents also decay within the step,
where ours hold them over the step), COBA ``method="exponential_euler"``
(the same scheme as ours).
"""

from __future__ import annotations

import numpy as np

from neuro import LIF, LIFCond, Network

N_E, N_I, P_CONNECT, DT = 3200, 800, 0.02, 0.1
KINDS = ("cuba", "coba")


def build(kind: str, seed: int = 0) -> tuple[Network, dict]:
    """The ``kind`` (``"cuba"`` or ``"coba"``) network in neuro; returns ``(net, {"E": mon, "I": mon})`` (spikes)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    net = Network(dt=DT, seed=seed)
    if kind == "cuba":
        model = LIF(tau_m=20.0, R=1.0, E_L=-49.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0, tau_e=5.0, tau_i=10.0)
        v_init = ("uniform", -60.0, -50.0)
        weights = {"exc": 1.62, "inh": -9.0}  # nA (R = 1 MOhm: mV)
    else:
        model = LIFCond(t_ref=5.0, I_bg=0.2)  # the COBA defaults of LIFCond
        v_init = lambda rng, shape: rng.normal(-55.0, 5.0, shape)  # noqa: E731
        weights = {"exc": 0.006, "inh": 0.067}  # uS
    E = net.population(N_E, model, name="E", v_init=v_init)
    I = net.population(N_I, model, name="I", v_init=v_init)
    for pre, receptor in ((E, "exc"), (I, "inh")):
        for post in (E, I):
            net.connect(pre, post, "fixed_probability", p=P_CONNECT, weight=weights[receptor], receptor=receptor,
                        autapses=True, name=f"{pre.name}{post.name}")
    return net, {"E": net.monitor_spikes(E), "I": net.monitor_spikes(I)}


def neuro_spikes(mons: dict, trial: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (ms) and neuron indices (0-3999, E first) of one trial from :func:`build`'s monitors.

    The one place that reads our monitors here (event lists: independent of the monitors' array axis order).
    """
    t, i = [], []
    for offset, mon in ((0, mons["E"]), (N_E, mons["I"])):
        keep = mon.trial == trial
        t.append(mon.t[keep])
        i.append(mon.i[keep] + offset)
    return np.concatenate(t), np.concatenate(i)


def brian2_network(kind: str, seed: int = 0):
    """The ``kind`` network as a Brian2 script builds it; returns ``(brian2.Network, SpikeMonitor)``.

    Call it inside the code generation target you want (``brian2.prefs.codegen.target``).
    """
    import brian2 as b2
    from brian2 import mV, ms

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    b2.seed(seed)
    ns = dict(taum=20 * ms, taue=5 * ms, taui=10 * ms, Vt=-50 * mV, Vr=-60 * mV)
    if kind == "cuba":
        ns.update(El=-49 * mV, we=1.62 * mV, wi=-9 * mV)
        eqs = """
        dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)
        dge/dt = -ge/taue : volt
        dgi/dt = -gi/taui : volt
        """
        method, v0 = "exact", "Vr + rand()*(Vt - Vr)"
    else:
        ns.update(El=-60 * mV, Ee=0 * mV, Ei=-80 * mV, Ibg=20 * mV, we=0.6, wi=6.7)  # conductances / g_L
        eqs = """
        dv/dt = (ge*(Ee - v) + gi*(Ei - v) - (v - El) + Ibg)/taum : volt (unless refractory)
        dge/dt = -ge/taue : 1
        dgi/dt = -gi/taui : 1
        """
        method, v0 = "exponential_euler", "-55*mV + 5*mV*randn()"
    P = b2.NeuronGroup(N_E + N_I, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms, method=method,
                       dt=DT * ms, namespace=ns, name="P")
    P.v = v0
    Ce = b2.Synapses(P, P, on_pre="ge += we", dt=DT * ms, namespace=ns, name="Ce")
    Ci = b2.Synapses(P, P, on_pre="gi += wi", dt=DT * ms, namespace=ns, name="Ci")
    Ce.connect(f"i < {N_E}", p=P_CONNECT)
    Ci.connect(f"i >= {N_E}", p=P_CONNECT)
    mon = b2.SpikeMonitor(P, name="spikes")
    return b2.Network(P, Ce, Ci, mon), mon


def brian2_spikes(mon) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (ms) and neuron indices of a Brian2 ``SpikeMonitor``."""
    import brian2 as b2

    return np.asarray(mon.t / b2.ms), np.asarray(mon.i[:], dtype=np.int64)


def firing_statistics(t: np.ndarray, i: np.ndarray, duration: float, n: int = N_E + N_I,
                      skip: float = 0.0) -> dict:
    """Mean rate (Hz) over the ``n`` neurons and mean CV of the interspike intervals.

    Spikes before ``skip`` ms (the initial transient) are left out; the CV is
    averaged over the neurons with at least 3 spikes (2 intervals). Returns
    ``{"rate": Hz, "cv": mean CV, "n_cv": neurons in the CV}``.
    """
    keep = t >= skip
    t, i = t[keep], i[keep]
    rate = len(t) / n / ((duration - skip) / 1000.0)
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    isi = np.diff(t)
    same = i[1:] == i[:-1]
    isi, owner = isi[same], i[1:][same]
    counts = np.bincount(owner, minlength=n)
    ok = counts >= 2
    if not ok.any():
        return {"rate": rate, "cv": float("nan"), "n_cv": 0}
    s1 = np.bincount(owner, isi, minlength=n)[ok]
    s2 = np.bincount(owner, isi * isi, minlength=n)[ok]
    mean = s1 / counts[ok]
    std = np.sqrt(np.maximum(s2 / counts[ok] - mean * mean, 0.0))
    return {"rate": float(rate), "cv": float(np.mean(std / mean)), "n_cv": int(ok.sum())}


def main(kind: str, duration: float = 1000.0, seed: int = 0, brian2: bool = False) -> dict:
    """Run ``kind`` for ``duration`` ms; print and return its firing statistics (and Brian2's with ``brian2=True``)."""
    net, mons = build(kind, seed)
    net.run(duration)
    out = {"neuro": firing_statistics(*neuro_spikes(mons), duration)}
    if brian2:
        import brian2 as b2

        b2net, mon = brian2_network(kind, seed)
        b2net.run(duration * b2.ms)
        out["brian2"] = firing_statistics(*brian2_spikes(mon), duration)
    for engine, s in out.items():
        print(f"{kind.upper()} {engine}: {s['rate']:.2f} Hz, mean CV of ISI {s['cv']:.3f} ({s['n_cv']} neurons)")
    return out
