"""STDP on 100,000 plastic synapses: our engine + plasticity.attach_to_network vs Brian2.

The network: 1000 Poisson inputs (15 Hz) project all-to-all onto 100 LIF
neurons (current-based, exponential synaptic current) through 100,000
synapses with pair-based additive STDP (exponential traces, all-to-all
interaction, hard bounds [0, w_max]), dt = 0.1 ms. Brian2 runs the same
model written as Brian2 equations (event-driven traces on the synapses,
``on_pre``/``on_post`` updates), restored from a stored state before each run
(so construction is excluded on both sides; Brian2-cython compilation is done
in a warm-up run and excluded).

Results: ours vs Brian2-numpy and vs Brian2-cython (target: ratio <= 1), and
the cost of plasticity in our engine (the same network with and without the
STDP hook: the ratio is the slow-down the rule adds).
"""

from __future__ import annotations

from neuro import LIF, Network

from plasticity import STDP, attach_to_network

from .harness import Result, compare

N_IN, N_OUT, RATE, DT = 1000, 100, 15.0, 0.1
W0, W_MAX, A_PLUS, A_MINUS, TAU = 0.1, 0.2, 0.002, 0.0021, 20.0
MODEL = dict(tau_m=20.0, R=1.0, E_L=0.0, v_th=15.0, v_reset=0.0, t_ref=2.0, I_bg=10.0, tau_e=5.0, tau_i=10.0)


def _ours(duration: float, plastic: bool):
    net = Network(dt=DT, seed=0)
    inp = net.poisson(N_IN, rates=RATE, name="in")
    out = net.population(N_OUT, LIF(**MODEL), name="out")
    proj = net.connect(inp, out, "all_to_all", weight=W0)
    if plastic:
        attach_to_network(net, proj, STDP(a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU, tau_minus=TAU, dt=DT,
                                          w_min=0.0, w_max=W_MAX))
    mon = net.monitor_spikes(out)

    def run():
        proj.w[:] = W0
        net.reset(1, seed=1)
        net.run(duration)
        return mon

    return run


def _brian2(target: str, duration: float):
    import brian2 as b2

    b2.prefs.codegen.target = target
    b2.start_scope()
    b2.defaultclock.dt = DT * b2.ms
    ns = dict(tau_m=MODEL["tau_m"] * b2.ms, R=MODEL["R"] * b2.Mohm, E_L=MODEL["E_L"] * b2.mV,
              I_bg=MODEL["I_bg"] * b2.nA, tau_e=MODEL["tau_e"] * b2.ms, taupre=TAU * b2.ms, taupost=TAU * b2.ms,
              Ap=A_PLUS * b2.nA, Am=A_MINUS * b2.nA, wmax=W_MAX * b2.nA)
    eqs = """
    dv/dt = (E_L - v + R * (I_e + I_bg)) / tau_m : volt (unless refractory)
    dI_e/dt = -I_e / tau_e : amp
    """
    out = b2.NeuronGroup(N_OUT, eqs, threshold="v > 15*mV", reset="v = 0*mV", refractory=MODEL["t_ref"] * b2.ms,
                         method="exact", namespace=ns)
    inp = b2.PoissonGroup(N_IN, rates=RATE * b2.Hz)
    syn = b2.Synapses(
        inp, out,
        model="""w : amp
                 dapre/dt = -apre / taupre : 1 (event-driven)
                 dapost/dt = -apost / taupost : 1 (event-driven)""",
        on_pre="""I_e_post += w
                  w = clip(w - Am * apost, 0*nA, wmax)
                  apre += 1""",
        on_post="""w = clip(w + Ap * apre, 0*nA, wmax)
                   apost += 1""",
        namespace=ns,
    )
    syn.connect()
    syn.w = W0 * b2.nA
    mon = b2.SpikeMonitor(out)
    net = b2.Network(out, inp, syn, mon)
    net.store()

    def run():
        net.restore()
        net.run(duration * b2.ms, namespace=ns)
        return mon

    return run


def run(quick: bool = False) -> list[Result]:
    duration = 200.0 if quick else 1000.0
    repeats = 2 if quick else 3
    params = {"inputs": N_IN, "neurons": N_OUT, "synapses": N_IN * N_OUT, "rate_hz": RATE, "dt_ms": DT,
              "duration_ms": duration}
    ours = _ours(duration, plastic=True)
    results = [
        compare("STDP 100k synapses vs brian2-numpy", ours, _brian2("numpy", duration),
                ours_label="neuro + plasticity.STDP", peer_label="brian2 numpy (event-driven STDP)",
                repeats=repeats, params=params, target="ratio <= 1"),
    ]
    if not quick:
        cy = _brian2("cython", duration)
        cy()  # compile
        results.append(compare("STDP 100k synapses vs brian2-cython", ours, cy, ours_label="neuro + plasticity.STDP",
                               peer_label="brian2 cython (event-driven STDP)", repeats=repeats, params=params,
                               target="ratio <= 1"))
    results.append(compare("STDP cost: plastic vs static network (ours)", ours, _ours(duration, plastic=False),
                           ours_label="with STDP hook", peer_label="same network, static synapses",
                           repeats=repeats, params=params, target="overhead, ratio as low as possible"))
    return results

