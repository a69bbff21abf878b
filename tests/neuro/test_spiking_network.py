"""The engine: batched trials, monitors, inputs, connectivity, bad input and the dt warning."""

import os

import numpy as np
import pytest

from neuro import LIF, DtWarning, Izhikevich, Network, correlated_spike_times
from neuro import connectivity as conn


def _lsm_like(impl="cpu", seed=7, fused=True, ticks=False, dtype=None):
    net = Network(dt=0.1, seed=seed, impl=impl, fused=fused, dtype=dtype)
    E = net.population(80, LIF(tau_m=30.0, I_bg=13.5, t_ref=3.0), name="E", v_init=("uniform", 13.5, 15.0))
    I = net.population(20, LIF(tau_m=30.0, I_bg=13.5, t_ref=2.0), name="I", v_init=("uniform", 13.5, 15.0))
    inp = net.poisson(10, rates=40.0, name="in")
    net.connect(inp, E, "fixed_probability", p=0.3, weight=4.0, delay=1.0)
    if ticks:  # per-trial spike times
        src = net.spike_times(3, indices=[0, 1, 2, 0], times=[5.0, 7.5, 7.5, 52.0], trials=[0, 1, 0, 1], name="ticks")
        net.connect(src, I, "all_to_all", weight=20.0)
    net.connect(E, E, "fixed_probability", p=0.1, weight=lambda r, n: r.gamma(2.0, 1.5, n), delay=1.5,
                U=0.5, D=1100.0, F=50.0)
    net.connect(E, I, "fixed_indegree", k=8, weight=3.0, delay=0.8, U=0.05, D=125.0, F=1200.0)
    net.connect(I, E, "fixed_probability", p=0.2, weight=-4.0, delay=0.8)
    mons = dict(spikes=net.monitor_spikes(E), rate=net.monitor_rate(E), state=net.monitor_state(E, ["v", "I_e"], [0, 5], every=0.5),
                trace=net.monitor_traces(E, 30.0, times=[25.0, 50.0, 100.0]), inp=net.monitor_spikes(inp))
    return net, mons


def test_batched_trials_equal_separate_single_trials():
    seeds = [11, 12, 13]
    net, m = _lsm_like()
    net.reset(batch_size=3, seed=seeds)
    net.run(100.0)
    assert m["spikes"].count.sum() > 50
    assert len(np.unique(m["spikes"].count.sum(axis=1))) > 1  # trials differ
    for b, s in enumerate(seeds):
        one, m1 = _lsm_like()
        one.reset(batch_size=1, seed=[s])
        one.run(100.0)
        np.testing.assert_array_equal(m1["spikes"].count[0], m["spikes"].count[b])
        sel = m["spikes"].trial == b
        np.testing.assert_array_equal(m1["spikes"].t, m["spikes"].t[sel])
        np.testing.assert_array_equal(m1["spikes"].i, m["spikes"].i[sel])
        np.testing.assert_array_equal(m1["state"].v[0], m["state"].v[b])
        np.testing.assert_array_equal(m1["trace"].values[0], m["trace"].values[b])
        np.testing.assert_array_equal(m1["rate"].rate[0], m["rate"].rate[b])
        np.testing.assert_array_equal(one["E"].v[0], net["E"].v[b])


def test_numba_engine_equals_numpy_reference_engine():
    a, ma = _lsm_like("cpu")
    b, mb = _lsm_like("reference")
    a.reset(2, seed=3)
    b.reset(2, seed=3)
    a.run(80.0)
    b.run(80.0)
    np.testing.assert_array_equal(ma["spikes"].count, mb["spikes"].count)
    np.testing.assert_allclose(a["E"].v, b["E"].v, rtol=1e-12)
    np.testing.assert_allclose(ma["state"].I_e, mb["state"].I_e, rtol=1e-12, atol=1e-12)


def test_fused_engine_equals_step_by_step_engine():
    """The fused fast path (many steps per numba call) against the step-by-step engine, mixing run and step."""
    a, ma = _lsm_like(fused=True, ticks=True)
    b, mb = _lsm_like(fused=False, ticks=True)
    a.reset(3, seed=2)
    b.reset(3, seed=2)
    a.run(47.3)
    a.step()
    a.run(52.6)
    b.run(100.0)
    for key in ("spikes", "inp"):
        np.testing.assert_array_equal(ma[key].t, mb[key].t)
        np.testing.assert_array_equal(ma[key].i, mb[key].i)
        np.testing.assert_array_equal(ma[key].trial, mb[key].trial)
    np.testing.assert_array_equal(ma["rate"].rate, mb["rate"].rate)
    np.testing.assert_array_equal(ma["trace"].values, mb["trace"].values)
    np.testing.assert_array_equal(ma["state"].v, mb["state"].v)
    np.testing.assert_array_equal(ma["state"].I_e, mb["state"].I_e)
    for name in ("E", "I"):
        for var in ("v", "I_e", "I_i", "last_spike"):
            np.testing.assert_array_equal(a[name].state[var], b[name].state[var])
    for pa, pb in zip(a.projections, b.projections):
        if pa.dynamic:
            np.testing.assert_array_equal(pa.u, pb.u)
            np.testing.assert_array_equal(pa.R, pb.R)
    assert ma["spikes"].count.sum() > 100


@pytest.mark.parametrize("t_ref", [0.0, 0.1, 25.5, 40.0])
def test_fused_engine_refractory_countdown_equals_step_engine(t_ref):
    """The fused engine counts refractoriness down in one byte up to 255 steps, in int64 beyond (40 ms = 400
    steps); both equal the step engine's ``step - last_spike >= ref``, across split runs and steps."""
    nets = []
    for fused in (True, False):
        net = Network(dt=0.1, seed=3, fused=fused)
        E = net.population(50, LIF(tau_m=10.0, I_bg=40.0, t_ref=t_ref), name="E", v_init=("uniform", 0.0, 15.0))
        net.connect(E, E, "fixed_probability", p=0.2, weight=-2.0, delay=0.2)
        mon = net.monitor_spikes(E)
        net.reset(2, seed=4)
        nets.append((net, mon))
    (a, ma), (b, mb) = nets
    a.run(30.3)
    a.step()
    a.run(29.6)
    b.run(60.0)
    np.testing.assert_array_equal(ma.t, mb.t)
    np.testing.assert_array_equal(ma.i, mb.i)
    np.testing.assert_array_equal(ma.trial, mb.trial)
    for var in ("v", "I_e", "I_i", "last_spike"):
        np.testing.assert_array_equal(a["E"].state[var], b["E"].state[var])
    isi = np.diff(ma.t[(ma.i == 0) & (ma.trial == 0)])
    assert len(isi) >= 1 and isi.min() >= t_ref - 1e-9
    assert ma.count.sum() > 100


def test_fused_engine_updates_populations_with_equal_parameters_as_one_block():
    """Consecutive populations with one parameter set each, the same for both, are updated as one block
    (fewer calls per step); a third with other parameters is not merged; results equal the step engine's."""
    from neuro import engine

    runs = []
    for fused in (True, False):
        net = Network(dt=0.1, seed=6, fused=fused)
        A = net.population(30, LIF(tau_m=15.0, I_bg=16.0, t_ref=2.0), name="A", v_init=("uniform", 0.0, 15.0))
        B = net.population(20, LIF(tau_m=15.0, I_bg=16.0, t_ref=2.0), name="B", v_init=("uniform", 0.0, 15.0))
        C = net.population(10, LIF(tau_m=15.0, I_bg=16.0, t_ref=3.0), name="C", v_init=("uniform", 0.0, 15.0))
        for pre, post, w in ((A, B, 2.0), (B, C, -3.0), (C, A, 1.5), (A, A, 0.5)):
            net.connect(pre, post, "fixed_probability", p=0.3, weight=w, delay=0.5)
        mons = [net.monitor_spikes(pop) for pop in (A, B, C)]
        net.reset(2, seed=1).run(50.0)
        runs.append([(m.t, m.i, m.trial) for m in mons])
        if fused:
            blocks = engine._Layout(net).pops
            assert [tuple(r[:2]) for r in blocks] == [(0, 50), (50, 60)]
    assert sum(len(t) for t, _, _ in runs[0]) > 100
    for a, b in zip(*runs):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_run_in_pieces_equals_one_run():
    a, ma = _lsm_like()
    b, mb = _lsm_like()
    a.reset(2, seed=1)
    b.reset(2, seed=1)
    a.run(60.0)
    for _ in range(3):
        b.run(20.0)
    np.testing.assert_array_equal(ma["spikes"].t, mb["spikes"].t)
    np.testing.assert_array_equal(ma["rate"].rate, mb["rate"].rate)


def test_monitors_agree_with_each_other():
    net, m = _lsm_like()
    net.reset(2, seed=5)
    net.run(100.0)
    sp, rate, trace, state = m["spikes"], m["rate"], m["trace"], m["state"]
    # rate: spikes per step / (N dt)
    counts = np.zeros((2, 1000))
    np.add.at(counts, (sp.trial, sp.steps), 1)
    np.testing.assert_allclose(rate.rate, counts / (80 * 0.1e-3))
    assert rate.rate.shape == (2, 1000) and rate.t[1] == pytest.approx(0.1)
    # traces: sum over earlier spikes of exp(-(t - t_s)/tau)
    np.testing.assert_allclose(trace.t, [25.0, 50.0, 100.0])
    for k, t in enumerate(trace.t):
        for b in range(2):
            expected = np.zeros(80)
            sel = (sp.trial == b) & (sp.t < t - 1e-9)
            np.add.at(expected, sp.i[sel], np.exp(-(t - sp.t[sel]) / 30.0))
            np.testing.assert_allclose(trace.values[b, k], expected, rtol=1e-9, atol=1e-12)
    assert trace.values.shape == (2, 3, 80)
    # state monitor: every 0.5 ms, (B, K, n)
    assert state.v.shape == (2, 200, 2)
    np.testing.assert_allclose(state.t[:3], [0.0, 0.5, 1.0])
    trains = sp.trains(trial=1)
    assert len(trains) == 80 and sum(len(x) for x in trains) == sp.count[1].sum()


def test_poisson_input_rate_and_per_trial_rates():
    net = Network(dt=0.1, seed=0)
    src = net.poisson(200, rates=np.array([[10.0] * 200, [50.0] * 200]))
    mon = net.monitor_spikes(src)
    net.reset(2)
    net.run(1000.0)
    rates = mon.count.mean(axis=1)
    assert rates[0] == pytest.approx(10.0, rel=0.05) and rates[1] == pytest.approx(50.0, rel=0.05)


def test_spike_times_per_trial_and_replaced_inputs():
    net = Network(dt=0.1, seed=0)
    src = net.spike_times(3, indices=[0, 1, 2, 2], times=[1.0, 2.0, 3.0, 4.0], trials=[0, 1, 1, 0])
    poisson = net.poisson(50, rates=0.0)
    mon = net.monitor_spikes(src)
    pmon = net.monitor_spikes(poisson)
    net.reset(2)
    net.run(5.0)
    assert list(zip(mon.trial, mon.i, mon.t)) == [(0, 0, 1.0), (1, 1, 2.0), (1, 2, 3.0), (0, 2, 4.0)]
    assert pmon.count.sum() == 0
    src.set_spikes([1], [0.5])  # all trials
    poisson.set_rates(200.0)
    net.reset(2)
    net.run(5.0)
    assert list(zip(mon.trial, mon.i, mon.t)) == [(0, 1, 0.5), (1, 1, 0.5)]
    assert pmon.count.sum() > 50


def test_current_waveform_and_step_inputs():
    net = Network(dt=0.1, seed=0)
    pop = net.population(2, LIF(v_th=1e9, tau_m=10.0), v_init=0.0)
    net.inject(pop, np.array([[1.0, 2.0], [3.0, 4.0]]), every=1.0)  # two 1-ms samples, then 0
    st = net.monitor_state(pop, "v")
    net.run(5.0)
    v = st.v[0]
    one = 1 - np.exp(-1.0 / 10.0)
    np.testing.assert_allclose(v[10], [1.0 * one, 2.0 * one], rtol=1e-12)
    assert np.all(np.diff(v[21:, 0]) < 0)  # current off after 2 ms: v decays
    out = net.step(inputs={f"{pop.name}.I": np.ones((1, 2))})
    assert set(out) == {f"{pop.name}.spikes"} and out[f"{pop.name}.spikes"].shape == (1, 2)


def test_connectivity_generators():
    i, j = conn.fixed_probability(400, 300, 0.1, seed=0)
    assert len(i) == pytest.approx(0.1 * 400 * 300, rel=0.05) and np.all(np.diff(i) >= 0)
    i, j = conn.fixed_indegree(50, 40, 7, autapses=False, seed=0)
    assert np.all(np.bincount(j, minlength=40) == 7)
    assert not np.any(i == j)
    assert len(set(zip(i.tolist(), j.tolist()))) == len(i)  # distinct inputs
    pos = conn.grid_positions((15, 3, 3))
    assert pos.shape == (135, 3)
    i, j = conn.distance_probability(pos, pos, C=1.0, lam=2.0, autapses=False, seed=1)
    d = np.linalg.norm(pos[i] - pos[j], axis=1)
    # empirical probability vs C exp(-(D/lam)^2) at distance 1 and 2
    all_d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    for dist in (1.0, 2.0):
        n_pairs = np.sum(np.isclose(all_d, dist))
        assert np.sum(np.isclose(d, dist)) / n_pairs == pytest.approx(np.exp(-(dist / 2.0) ** 2), abs=0.05)
    types = np.where(np.arange(135) % 5 == 0, "I", "E")
    C = {("E", "E"): 0.3, ("E", "I"): 0.2, ("I", "E"): 0.4, ("I", "I"): 0.1}
    i, j = conn.typed_distance_probability(pos, types, C, lam=100.0, seed=2)  # lam >> size: probability ~ C
    for (a, b), c in C.items():
        n_pairs = np.sum(types == a) * np.sum(types == b) - (np.sum(types == a) if a == b else 0)
        got = np.sum((types[i] == a) & (types[j] == b)) / n_pairs
        assert got == pytest.approx(c, abs=0.04)


def test_distance_rule_in_network_uses_positions():
    net = Network(dt=0.1, seed=0)
    pos = conn.grid_positions((6, 3, 3))
    a = net.population(54, positions=pos)
    proj = net.connect(a, a, "distance", C=0.5, lam=1.5)
    assert proj.n_synapses > 0 and not np.any(proj.i == proj.j)
    with pytest.raises(ValueError, match="positions"):
        net.connect(a, net.population(3), "distance", C=0.5, lam=1.5)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="dt"):
        Network(dt=-0.1)
    net = Network(dt=0.1, seed=0)
    with pytest.raises(ValueError, match="tau_m"):
        net.population(3, LIF(tau_m=-5.0))
    with pytest.raises(ValueError, match="tau_e"):
        net.population(3, LIF(tau_e=0.0))
    with pytest.raises(ValueError, match="v_th must be above v_reset"):
        net.population(3, LIF(v_th=10.0, v_reset=12.0))
    with pytest.raises(ValueError, match="v_peak"):
        net.population(3, Izhikevich(c=40.0))
    with pytest.raises(ValueError, match=r"tau_m must be a scalar or have shape \(3,\)"):
        net.population(3, LIF(tau_m=np.ones(4)))
    a = net.population(5)
    with pytest.raises(ValueError, match="p must be a probability"):
        net.connect(a, a, "fixed_probability", p=1.5)
    with pytest.raises(ValueError, match="p must be a probability"):
        net.connect(a, a, "fixed_probability", p=-0.1)
    with pytest.raises(ValueError, match="weight must be a scalar or have shape"):
        net.connect(a, a, i=[0, 1], j=[1, 2], weight=np.ones(3))
    with pytest.raises(ValueError, match="j must index"):
        net.connect(a, a, i=[0], j=[5])
    with pytest.raises(ValueError, match="rule"):
        net.connect(a, a, "random")
    with pytest.raises(ValueError, match="explicit"):
        net.connect(a, a, "fixed_probability", p=0.1, i=[0], j=[1])
    with pytest.raises(ValueError, match="delay must be >= 0"):
        net.connect(a, a, i=[0], j=[1], delay=-1.0)
    with pytest.raises(ValueError, match="U, D and F"):
        net.connect(a, a, i=[0], j=[1], U=0.5)
    with pytest.raises(ValueError, match="rates must be"):
        net.poisson(4, rates=np.ones(3))
    with pytest.raises(ValueError, match="indices and times"):
        net.spike_times(4, indices=[0, 1], times=[1.0])
    with pytest.raises(ValueError, match="indices must be in"):
        net.spike_times(4, indices=[4], times=[1.0])
    with pytest.raises(ValueError, match="amplitude must be"):
        net.inject(a, np.ones(4))
    with pytest.raises(ValueError, match="v_init"):
        net.population(3, v_init=np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        net.reset(0)
    with pytest.raises(ValueError, match="one seed per trial"):
        net.reset(2, seed=[1, 2, 3])
    net.reset(2)
    with pytest.raises(ValueError, match=r"must have shape \(2, 5\)"):
        net.step(inputs={f"{a.name}.I": np.ones((3, 5))})
    with pytest.raises(ValueError, match="unknown input port"):
        net.step(inputs={"nope.I": np.ones((2, 5))})
    with pytest.raises(TypeError, match="seed"):
        Network(seed=1.5)
    other = Network()
    with pytest.raises(ValueError, match="of this network"):
        net.connect(other.population(2), a)
    net.monitor_spikes(a)  # a change after reset: run() must not silently reset to one trial
    with pytest.raises(ValueError, match="changed since reset"):
        net.run(1.0)
    net.reset(2)
    net.run(1.0)
    a.v = 3.0  # writes into the state
    assert np.all(a.state["v"] == 3.0)


def test_dt_larger_than_a_time_constant_warns():
    net = Network(dt=1.0, seed=0)
    net.population(3, LIF(tau_e=0.5))
    with pytest.warns(DtWarning, match="tau_e"):
        net.reset(1)
    quiet = Network(dt=0.1, seed=0)
    quiet.population(3, LIF())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.reset(1)


def test_hooks_see_spikes_and_can_change_weights():
    net = Network(dt=0.1, seed=0)
    src = net.spike_times(1, [0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])
    post = net.population(1, LIF(v_th=1e9))
    proj = net.connect(src, post, "one_to_one", weight=1.0)
    seen = []

    def potentiate(n, step):
        if src.spikes[0, 0]:
            seen.append(step)
            proj.w += 0.5

    net.add_hook(potentiate)
    st = net.monitor_state(post, "I_e")
    net.run(6.0)
    assert seen == [10, 20, 30, 40, 50]
    assert proj.w[0] == pytest.approx(3.5)
    jumps = [st.I_e[0, s + 1, 0] - st.I_e[0, s, 0] * np.exp(-0.1 / 3.0) for s in seen]
    np.testing.assert_allclose(jumps, [1.0, 1.5, 2.0, 2.5, 3.0], rtol=1e-9)


def test_float32_state():
    nets = {}
    for dtype in ("float32", "float64"):
        for fused in (True, False):
            net, m = _lsm_like(fused=fused, dtype=dtype)
            net.reset(2, seed=3)
            net.run(60.0)
            nets[dtype, fused] = (net, m)
    n32, m32 = nets["float32", True]
    assert n32["E"].v.dtype == np.float32 and n32.projections[1].u.dtype == np.float32
    np.testing.assert_array_equal(m32["spikes"].t, nets["float32", False][1]["spikes"].t)  # fused == step by step
    m64 = nets["float64", True][1]
    # single precision rounding changes a few spikes at most, not the activity
    assert abs(m32["spikes"].count.sum() - m64["spikes"].count.sum()) <= 0.05 * m64["spikes"].count.sum()
    np.testing.assert_allclose(m32["state"].v[:, :50], m64["state"].v[:, :50], atol=1e-3)
    with pytest.raises(TypeError, match="dtype"):
        Network(dtype="int32")


def test_parallel_trials_equal_serial():
    a, ma = _lsm_like(ticks=True)
    a.parallel = True
    b, mb = _lsm_like(ticks=True)
    a.reset(3, seed=2)
    b.reset(3, seed=2)
    a.run(100.0)
    b.run(100.0)
    assert ma["spikes"].count.sum() > 100
    np.testing.assert_array_equal(ma["spikes"].t, mb["spikes"].t)
    np.testing.assert_array_equal(ma["spikes"].trial, mb["spikes"].trial)
    np.testing.assert_array_equal(ma["state"].v, mb["state"].v)


def _mixed(fused, parallel=False):
    """Conductance and current LIF, per-synapse delays (several per row), dynamic synapses, an injected current."""
    from neuro import LIFCond

    net = Network(dt=0.1, seed=5, fused=fused, parallel=parallel)
    E = net.population(60, LIF(tau_m=20.0, I_bg=12.0, t_ref=2.0), name="E", v_init=("uniform", 0.0, 15.0))
    C = net.population(30, LIFCond(I_bg=0.0, t_ref=2.0), name="C", v_init=("uniform", -60.0, -50.0))
    src = net.poisson(40, rates=np.linspace(5.0, 60.0, 40), name="in")
    net.inject(E, np.linspace(0.0, 3.0, 60))
    net.connect(src, E, "fixed_probability", p=0.3, weight=3.0, delay=lambda r, n: r.uniform(0.0, 2.0, n))
    net.connect(src, C, "fixed_probability", p=0.3, weight=0.004, receptor="exc", delay=0.5)
    net.connect(E, C, "fixed_indegree", k=10, weight=0.02, receptor="exc", delay=lambda r, n: r.uniform(0.5, 3.0, n),
                U=0.3, D=200.0, F=100.0)
    net.connect(C, E, "fixed_probability", p=0.2, weight=-0.3, delay=lambda r, n: r.choice([0.0, 0.3, 1.2], n))
    net.connect(E, E, "fixed_probability", p=0.1, weight=0.8, delay=1.0)
    mons = dict(E=net.monitor_spikes(E), C=net.monitor_spikes(C), s=net.monitor_state(C, ["v", "g_e", "g_i"], [0, 7]),
                r=net.monitor_rate(E))
    return net, mons


@pytest.mark.parametrize("parallel", [False, True])
def test_fused_engine_equals_step_engine_on_mixed_network(parallel):
    """Heterogeneous delays (several per presynaptic row, including 0), LIFCond next to LIF, dynamic
    synapses, injected currents, split runs, and with ``parallel`` the trials in groups on threads."""
    a, ma = _mixed(True, parallel)
    b, mb = _mixed(False)
    for net in (a, b):
        net.reset(3, seed=4)
    a.run(61.3)
    a.run(38.7)
    b.run(100.0)
    assert ma["C"].count.sum() > 50 and ma["E"].count.sum() > 50
    for key in ("E", "C"):
        for attr in ("t", "i", "trial"):
            np.testing.assert_array_equal(getattr(ma[key], attr), getattr(mb[key], attr))
    for var in ("v", "g_e", "g_i"):
        np.testing.assert_array_equal(ma["s"].values[var], mb["s"].values[var])
    np.testing.assert_array_equal(ma["r"].counts, mb["r"].counts)
    pa, pb = a.projections[2], b.projections[2]
    np.testing.assert_array_equal(pa.u, pb.u)
    np.testing.assert_array_equal(pa.last, pb.last)
    for pop in ("E", "C"):
        for r in ("exc", "inh"):
            np.testing.assert_array_equal(a[pop]._buf[r], b[pop]._buf[r])  # input in flight, as the step engine holds it
        np.testing.assert_array_equal(a[pop].spikes, b[pop].spikes)


def test_fused_engine_event_buffer_growth_and_shared_sources(monkeypatch):
    """A small event buffer (the kernel stops, the buffer doubles, the kernel goes on), trial groups on threads,
    and two spike monitors and a rate monitor on one source: the records equal the step engine's."""
    from neuro import engine

    monkeypatch.setattr(engine, "_EVENT_BUFFER", 0)
    calls = []
    kernel = engine._run_steps
    monkeypatch.setattr(engine, "_run_steps", lambda *args: calls.append(1) or kernel(*args))
    runs = []
    for fused in (True, False):
        net, mons = _mixed(fused, parallel=fused)
        mons["in"] = net.monitor_spikes(net["in"])
        mons["in2"] = net.monitor_spikes(net["in"])
        mons["in_rate"] = net.monitor_rate(net["in"])
        net.reset(3, seed=4)
        net.run(100.0)
        runs.append(mons)
    ma, mb = runs
    assert len(calls) > 4  # the buffer filled: more kernel calls than trial groups
    for key in ("E", "C", "in", "in2"):
        assert ma[key].count.sum() > 50
        np.testing.assert_array_equal(ma[key].count, mb[key].count)
        for attr in ("t", "i", "trial"):
            np.testing.assert_array_equal(getattr(ma[key], attr), getattr(mb[key], attr))
    np.testing.assert_array_equal(ma["in_rate"].counts, mb["in_rate"].counts)


def test_fused_engine_with_per_synapse_and_shared_static_weights():
    """Static synapses with a weight each and with one weight for all (read once per row) match the step engine."""
    runs = []
    for fused in (True, False):
        net = Network(dt=0.1, seed=8, fused=fused)
        E = net.population(60, LIF(tau_m=20.0, I_bg=13.0, t_ref=2.0), name="E", v_init=("uniform", 0.0, 15.0))
        src = net.poisson(30, rates=30.0, name="in")
        net.connect(src, E, "fixed_probability", p=0.3, weight=lambda r, n: r.gamma(2.0, 1.0, n), delay=0.5)
        net.connect(E, E, "fixed_probability", p=0.2, weight=0.7, delay=1.0)
        net.connect(E, E, "fixed_probability", p=0.2, weight=lambda r, n: -r.gamma(2.0, 0.5, n), delay=1.0)
        net.connect(src, E, "fixed_probability", p=0.2, weight=lambda r, n: r.gamma(2.0, 0.5, n),
                    delay=lambda r, n: r.uniform(0.0, 2.0, n))  # several delays per row
        shared = net.projections[1]
        mon = net.monitor_spikes(E)
        run = []
        for change in range(3):  # weights changed between runs are read: one number for all, then one each
            if change == 1:
                shared.w[:] = 0.9
            if change == 2:
                shared.w[::3] = 1.2
            net.reset(2, seed=3).run(100.0)
            run += [mon.t.copy(), mon.i.copy(), E.state["v"].copy(), E.state["I_e"].copy(), E.state["I_i"].copy()]
        runs.append(run)
    assert len(runs[0][0]) > 50
    assert not np.array_equal(runs[0][2], runs[0][7]) and not np.array_equal(runs[0][7], runs[0][12])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_fused_engine_takes_an_empty_projection_and_follows_changed_delays():
    """A projection without synapses delivers nothing; delays changed between resets take effect."""
    nets = []
    for fused in (True, False):
        net = Network(dt=0.1, seed=2, fused=fused)
        E = net.population(20, LIF(tau_m=20.0, I_bg=16.0), name="E", v_init=("uniform", 0.0, 15.0))
        net.connect(E, E, "explicit", i=np.zeros(0, int), j=np.zeros(0, int))
        proj = net.connect(E, E, "fixed_probability", p=0.3, weight=0.5, delay=1.0)
        mon = net.monitor_spikes(E)
        net.reset(2).run(30.0)
        first = mon.t.copy()
        proj.delay[:] = 2.5
        net.reset(2).run(30.0)
        nets.append((first, mon.t.copy()))
    (fused_1, fused_2), (step_1, step_2) = nets
    np.testing.assert_array_equal(fused_1, step_1)
    np.testing.assert_array_equal(fused_2, step_2)
    assert not np.array_equal(fused_1, fused_2)  # the new delays changed the activity


def test_correlated_spike_times_rates_and_correlations_match_theory():
    """Every input at ``rate``; correlated pairs at correlation ~c**2, independent ones ~0."""
    n, k, rate, c, T, dt = 10, 4, 20.0, 0.5, 200_000.0, 1.0
    idx, times, trials = correlated_spike_times(n, k, rate, c, T, dt, trials=2, seed=3)
    assert set(np.unique(trials)) == {0, 1} and np.all(times % dt == 0) and times.max() < T
    slots = np.zeros((2, int(T / dt), n))
    slots[trials, (times / dt).astype(int), idx] = 1
    p = rate * dt / 1000.0
    np.testing.assert_allclose(slots.mean(axis=(0, 1)), p, rtol=0.05)
    r = np.corrcoef(slots[0].T)
    pairs = r[:k, :k][np.triu_indices(k, 1)]
    assert np.all(np.abs(pairs - c**2) < 0.03), pairs
    others = r[np.triu_indices(n, 1)][np.triu_indices(n, 1)[1] >= k]  # pairs with an independent input
    assert np.all(np.abs(others) < 0.03), others
    same = correlated_spike_times(n, k, rate, c, 1000.0, dt, trials=2, seed=3)
    np.testing.assert_array_equal(same[0], correlated_spike_times(n, k, rate, c, 1000.0, dt, trials=2, seed=3)[0])
    with pytest.raises(ValueError, match="n_correlated"):
        correlated_spike_times(n, n + 1, rate, c, T, dt)
    with pytest.raises(ValueError, match="c must be a probability"):
        correlated_spike_times(n, k, rate, 1.5, T, dt)
    with pytest.raises(ValueError, match="spike probability per slot"):
        correlated_spike_times(n, k, 2000.0, c, T, dt)
    with pytest.raises(ValueError, match="trials"):
        correlated_spike_times(n, k, rate, c, T, dt, trials=0)


@pytest.mark.parametrize("v_init", [[np.nan, 0.0, 0.0], np.inf, ("uniform", 0.0, np.nan)])
def test_population_rejects_non_finite_v_init(v_init):
    with pytest.raises(ValueError, match="v_init"):
        Network().population(3, v_init=v_init)


def test_population_rejects_a_v_init_callable_returning_nan():
    net = Network()
    net.population(3, v_init=lambda rng, shape: np.full(shape, np.nan), name="p")
    with pytest.raises(ValueError, match="v_init of 'p'"):
        net.reset()


def _plastic_network(n, p):
    """A network with every kind of part that holds arrays: populations, sources, projections, monitors, a hook."""
    import plasticity

    net = Network(dt=0.1, seed=0)
    exc = net.population(n, LIF(I_bg=12.0), name="E")
    inp = net.poisson(20, rates=20.0, name="in")
    net.spike_times(2, [0, 1], [1.0, 2.0], name="st")
    net.connect(inp, exc, "fixed_probability", p=0.2, weight=2.0)
    rec = net.connect(exc, exc, "fixed_probability", p=p, weight=0.5, U=0.5, D=100.0, F=50.0)
    net.connect(net["st"], exc, "all_to_all", weight=1.0)
    net.inject(exc, 0.5)
    net.monitor_spikes(exc)
    net.monitor_state(exc, ["v", "I_e"])
    net.monitor_rate(exc)
    net.monitor_traces(exc, 10.0, every=1.0)
    plasticity.attach_to_network(net, rec, plasticity.STDP(dt=net.dt))
    net.reset(batch_size=2)
    net.run(2.0)
    return net


def test_a_dropped_network_is_freed_without_the_cyclic_gc():
    import gc
    import weakref

    gc.collect()
    gc.disable()  # reference counting alone must free everything: no reference cycles
    try:
        net = _plastic_network(50, 0.1)
        parts = [net, *net.populations, *net.sources, *net.projections, *net.monitors, *(h for h, _ in net.hooks),
                 net.populations[0].state["v"], net.projections[1].w]
        refs = [weakref.ref(x) for x in parts]
        assert len(net.populations[0].incoming) == 3
        del net, parts
        alive = [type(r()).__name__ for r in refs if r() is not None]
        assert not alive, f"still alive after the network was dropped: {alive}"
    finally:
        gc.enable()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident set size from /proc")
def test_rebuilding_a_network_in_a_loop_keeps_memory_bounded():
    import gc

    gc.disable()
    try:
        _plastic_network(5000, 0.02)  # one build: imports and caches
        base = _rss_mb()
        for _ in range(30):
            _plastic_network(5000, 0.02)  # ~500k synapses, ~40 MB each
        grown = _rss_mb() - base
    finally:
        gc.enable()
    assert grown < 200, f"RSS grew by {grown:.0f} MB over 30 rebuilds"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fused", [True, False])
def test_state_monitor_values_are_views_of_one_array_in_the_network_dtype(dtype, fused):
    import tracemalloc

    def build(fused):
        net = Network(dt=0.1, seed=3, dtype=dtype, fused=fused)
        pop = net.population(40, LIF(I_bg=14.0), name="E", v_init=("uniform", 0.0, 10.0))
        return net, net.monitor_state(pop, ["v", "I_e"], indices=[0, 5, 7], every=0.3)

    net, mon = build(fused)
    net.reset(batch_size=2)
    net.run(20.0)
    net.run(10.0)  # a second run extends the same record
    v = mon.values["v"]
    assert v.dtype == np.dtype(dtype) and v.shape == (2, 100, 3)
    assert np.shares_memory(v, mon.v) and np.shares_memory(v, mon.values["v"])
    tracemalloc.start()
    for _ in range(5):
        mon.values, mon.v, mon.I_e
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < v.nbytes / 2  # no copy per access
    # the same record as a step-by-step run through the component protocol
    ref_net, ref = build(False)
    ref_net.reset(batch_size=2)
    for _ in range(300):
        ref_net.step()
    np.testing.assert_array_equal(mon.t, ref.t)
    np.testing.assert_array_equal(v, ref.v)
    np.testing.assert_array_equal(mon.I_e, ref.I_e)


def test_allocations_larger_than_memory_are_refused_up_front():
    from neuro.validation import physical_memory

    if physical_memory() is None:
        pytest.skip("the OS does not report its physical memory")
    # sizes of terabytes: more than any test machine has
    with pytest.raises(ValueError, match=r"n=100000000000 .*needs about \d+\.\d GiB, more than this machine's memory"):
        Network().population(10**11)
    net = Network(seed=0)
    pop = net.population(1000)
    with pytest.raises(ValueError, match=r"batch_size=10000000000 .*GiB"):
        net.reset(batch_size=10**10)
    net.monitor_state(pop, "v")
    net.reset()
    with pytest.raises(ValueError, match=r"duration=10000000000.0 .*GiB"):
        net.run(1e10)


def _mixed_cond(impl="cpu", fused=True):
    """A current-based LIF population and a conductance-based one, coupled both ways, Poisson-driven."""
    from neuro import LIFCond

    net = Network(dt=0.1, seed=11, impl=impl, fused=fused)
    cur = net.population(40, LIF(tau_m=20.0, v_th=15.0, v_reset=0.0, t_ref=2.0, I_bg=17.0), name="cur",
                         v_init=("uniform", 0.0, 15.0))
    cond = net.population(30, LIFCond(t_ref=3.0, I_bg=0.1), name="cond", v_init=("uniform", -60.0, -50.0))
    src = net.poisson(20, 30.0, name="in")
    net.connect(src, cond, "fixed_probability", p=0.5, weight=0.01, receptor="exc", delay=0.3)
    net.connect(cur, cond, "fixed_probability", p=0.3, weight=0.005, receptor="exc", delay=1.0)
    net.connect(cond, cond, "fixed_probability", p=0.3, weight=0.03, receptor="inh", delay=0.5, U=0.4, D=100.0,
                F=30.0)
    net.connect(cond, cur, "fixed_probability", p=0.3, weight=-1.0, delay=0.7)
    mons = dict(spikes=net.monitor_spikes(cond), cur=net.monitor_spikes(cur),
                state=net.monitor_state(cond, ["v", "g_e", "g_i"], indices=[0, 9]))
    return net, mons


def test_fused_engine_with_conductance_populations_equals_step_by_step_and_reference():
    runs = {}
    for key in (("cpu", True), ("cpu", False), ("reference", False)):
        net, m = _mixed_cond(*key)
        net.reset(3, seed=5)
        net.run(150.0)
        runs[key] = m
    a, b, r = runs.values()
    assert a["spikes"].count.sum() > 30 and a["cur"].count.sum() > 30
    for name in ("spikes", "cur"):
        np.testing.assert_array_equal(a[name].t, b[name].t)
        np.testing.assert_array_equal(a[name].i, b[name].i)
        np.testing.assert_array_equal(a[name].count, r[name].count)
    for var in ("v", "g_e", "g_i"):
        np.testing.assert_array_equal(getattr(a["state"], var), getattr(b["state"], var))
        np.testing.assert_allclose(getattr(a["state"], var), getattr(r["state"], var), rtol=1e-10, atol=1e-10)
