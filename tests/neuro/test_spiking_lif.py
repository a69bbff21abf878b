"""LIF, Izhikevich and AdEx neurons: analytic spike times, kernels vs references, plain-loop references."""

import numpy as np
import pytest

from neuro import AdEx, Izhikevich, LIF, Network
from neuro.neurons import lif_step_cpu, lif_step_reference


def _single(model, I, duration, dt=0.1, v0=0.0, impl="cpu"):
    net = Network(dt=dt, seed=0, impl=impl)
    pop = net.population(1, model, v_init=v0)
    net.inject(pop, I)
    mon = net.monitor_spikes(pop)
    net.reset(1)
    net.run(duration)
    return mon.t


@pytest.mark.parametrize("impl", ["cpu", "reference"])
@pytest.mark.parametrize("dt", [0.1, 0.05])
def test_lif_first_spike_and_isi_match_theory(impl, dt):
    tau, R, I, theta, v_reset, t_ref, v0 = 20.0, 2.0, 10.0, 15.0, 5.0, 2.0, 0.0
    model = LIF(tau_m=tau, R=R, E_L=0.0, v_th=theta, v_reset=v_reset, t_ref=t_ref)
    t = _single(model, I, 300.0, dt=dt, v0=v0, impl=impl)
    RI = R * I
    first = tau * np.log((RI - v0) / (RI - theta))
    isi = t_ref + tau * np.log((RI - v_reset) / (RI - theta))
    assert len(t) > 5
    assert abs(t[0] - first) <= dt + 1e-9
    assert np.all(np.abs(np.diff(t) - isi) <= dt + 1e-9)


def test_lif_below_threshold_never_spikes_and_relaxes_to_RI():
    net = Network(dt=0.1, seed=0)
    pop = net.population(1, LIF(tau_m=10.0, R=1.5, E_L=-1.0, v_th=20.0, v_reset=0.0), v_init=-1.0)
    net.inject(pop, 10.0)  # v_inf = -1 + 15 = 14 < 20
    mon = net.monitor_spikes(pop)
    st = net.monitor_state(pop, "v")
    net.run(200.0)
    assert len(mon.t) == 0
    expected = -1.0 + 15.0 * (1 - np.exp(-st.t / 10.0))  # exact at the grid points
    np.testing.assert_allclose(st.v[0, :, 0], expected, atol=1e-12)


def test_lif_kernel_equals_reference():
    rng = np.random.default_rng(0)
    B, N = 3, 257
    args = dict(
        ref_steps=rng.integers(0, 30, N), E_L=rng.normal(0, 1, N), R=rng.uniform(0.5, 2, N),
        I_bg=rng.normal(10, 3, N), v_th=np.full(N, 15.0), v_reset=rng.uniform(0, 10, N),
        decay_m=np.exp(-0.1 / rng.uniform(5, 40, N)), decay_e=np.exp(-0.1 / 3.0) + np.zeros(N),
        decay_i=np.exp(-0.1 / 6.0) + np.zeros(N),
    )
    state = dict(v=rng.uniform(0, 16, (B, N)), I_e=rng.uniform(0, 5, (B, N)), I_i=-rng.uniform(0, 5, (B, N)),
                 I_ext=rng.normal(0, 2, (B, N)), last_spike=rng.integers(-40, 0, (B, N)))
    a = {k: v.copy() for k, v in state.items()}
    b = {k: v.copy() for k, v in state.items()}
    for step in range(40):
        sa = lif_step_reference(a["v"], a["I_e"], a["I_i"], a["I_ext"], a["last_spike"], step, spikes=np.zeros((B, N), bool), **args)
        sb = lif_step_cpu(b["v"], b["I_e"], b["I_i"], b["I_ext"], b["last_spike"], step, spikes=np.zeros((B, N), bool), **args)
        np.testing.assert_array_equal(sa, sb)
        for k in state:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-13, atol=1e-13)
    assert a["last_spike"].max() >= 0  # some spikes happened


def _izhikevich_loop(I, T, dt, a=0.02, b=0.2, c=-65.0, d=8.0):
    v, u, spikes = c, b * c, []
    for n in range(int(round(T / dt))):
        dv = 0.04 * v * v + 5 * v + 140 - u + I
        du = a * (b * v - u)
        v, u = v + dt * dv, u + dt * du
        if v >= 30.0:
            spikes.append(n * dt)
            v, u = c, u + d
    return np.array(spikes)


@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_izhikevich_equals_plain_loop(impl):
    t = _single(Izhikevich(), 10.0, 300.0, dt=0.1, v0=-65.0, impl=impl)
    ref = _izhikevich_loop(10.0, 300.0, 0.1)
    assert len(ref) > 5
    np.testing.assert_allclose(t, ref)


def _adex_loop(I, T, dt, C=0.281, gL=0.030, EL=-70.6, VT=-50.4, DT=2.0, tau_w=144.0, a=0.004, b=0.0805, vr=-70.6, vp=0.0):
    v, w, spikes = EL, 0.0, []
    for n in range(int(round(T / dt))):
        dv = (-gL * (v - EL) + gL * DT * np.exp(min((v - VT) / DT, 30.0)) - w + I) / C
        dw = (a * (v - EL) - w) / tau_w
        v, w = v + dt * dv, w + dt * dw
        if v > vp:
            spikes.append(n * dt)
            v, w = vr, w + b
    return np.array(spikes)


def test_adex_equals_plain_loop_and_adapts():
    t = _single(AdEx(), 1.0, 500.0, dt=0.05, v0=-70.6)
    ref = _adex_loop(1.0, 500.0, 0.05)
    assert len(ref) > 4
    np.testing.assert_allclose(t, ref)
    isi = np.diff(t)
    assert isi[-1] > isi[0]  # spike-frequency adaptation


@pytest.mark.parametrize("model", [LIF(t_ref=2.0), Izhikevich(t_ref=2.0), AdEx(t_ref=2.0)])
def test_refractory_period_holds_v(model):
    net = Network(dt=0.1, seed=0)
    pop = net.population(1, model)
    net.inject(pop, 40.0)
    mon = net.monitor_spikes(pop)
    st = net.monitor_state(pop, "v")
    net.run(100.0)
    assert len(mon.t) >= 2
    reset = st.v[0, mon.steps[0] + 1, 0]
    held = st.v[0, mon.steps[0] + 1: mon.steps[0] + 21, 0]  # 20 steps = 2 ms after the spike
    np.testing.assert_array_equal(held, reset)
    assert st.v[0, mon.steps[0] + 22, 0] != reset


# ------------------------------------------------------------ conductance-based LIF


def test_lif_cond_kernel_equals_reference():
    from neuro.neurons import lif_cond_step_cpu, lif_cond_step_reference

    rng = np.random.default_rng(1)
    B, N = 3, 257
    args = dict(
        ref_steps=rng.integers(0, 30, N), E_L=rng.normal(-60, 2, N), R=rng.uniform(50, 150, N),
        I_bg=rng.normal(0.15, 0.05, N), E_e=np.zeros(N), E_i=rng.uniform(-85, -70, N), v_th=np.full(N, -50.0),
        v_reset=rng.uniform(-65, -55, N), dt_tau=0.1 / rng.uniform(10, 30, N),
        decay_e=np.exp(-0.1 / 5.0) + np.zeros(N), decay_i=np.exp(-0.1 / 10.0) + np.zeros(N),
    )
    state = dict(v=rng.uniform(-65, -49, (B, N)), g_e=rng.uniform(0, 0.02, (B, N)), g_i=rng.uniform(0, 0.05, (B, N)),
                 I_ext=rng.normal(0, 0.05, (B, N)), last_spike=rng.integers(-60, 0, (B, N)))
    a = {k: v.copy() for k, v in state.items()}
    b = {k: v.copy() for k, v in state.items()}
    for step in range(40):
        sa = lif_cond_step_reference(a["v"], a["g_e"], a["g_i"], a["I_ext"], a["last_spike"], step,
                                     spikes=np.zeros((B, N), bool), **args)
        sb = lif_cond_step_cpu(b["v"], b["g_e"], b["g_i"], b["I_ext"], b["last_spike"], step,
                               spikes=np.zeros((B, N), bool), **args)
        np.testing.assert_array_equal(sa, sb)
        for k in state:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-13, atol=1e-13)
    assert a["last_spike"].max() >= 0  # some spikes happened


@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_lif_cond_relaxes_to_the_conductance_weighted_mean_of_the_reversal_potentials(impl):
    """With constant conductances (tau_e, tau_i very long), v follows the exact solution
    v_inf + (v0 - v_inf) exp(-(1 + R g) t / tau_m), v_inf = (E_L + R (g_e E_e + g_i E_i)) / (1 + R g)."""
    from neuro import LIFCond

    tau_m, R, E_L, E_e, E_i, g_e, g_i = 20.0, 100.0, -60.0, 0.0, -80.0, 0.004, 0.002
    net = Network(dt=0.1, seed=0, impl=impl)
    pop = net.population(1, LIFCond(tau_m=tau_m, R=R, E_L=E_L, E_e=E_e, E_i=E_i, v_th=0.0, v_reset=-70.0,
                                     tau_e=1e12, tau_i=1e12), v_init=-70.0)
    st = net.monitor_state(pop, ["v", "g_e", "g_i"])
    net.reset(1)
    net.set_state(pop, "g_e", g_e)
    net.set_state(pop, "g_i", g_i)
    net.run(100.0)
    a = 1 + R * (g_e + g_i)
    v_inf = (E_L + R * (g_e * E_e + g_i * E_i)) / a
    expected = v_inf + (-70.0 - v_inf) * np.exp(-a * st.t / tau_m)
    np.testing.assert_allclose(st.v.reshape(-1), expected, atol=1e-10)  # B = N = 1: any axis order
    np.testing.assert_allclose(st.g_e.reshape(-1), g_e)


def test_lif_cond_synapses_need_a_receptor_and_nonnegative_conductances():
    from neuro import LIFCond

    net = Network(dt=0.1, seed=0)
    pop = net.population(5, LIFCond())
    src = net.poisson(5, 10.0)
    with pytest.raises(ValueError, match="receptor='exc' or 'inh'"):
        net.connect(src, pop, "all_to_all", weight=0.01)
    with pytest.raises(ValueError, match="must be >= 0"):
        net.connect(src, pop, "all_to_all", weight=-0.01, receptor="inh")
    proj = net.connect(src, pop, "all_to_all", weight=0.01, receptor="inh")
    assert proj.receptor == "inh"
    net.reset(2)
    assert set(pop.state) >= {"v", "g_e", "g_i"} and "I_e" not in pop.state
