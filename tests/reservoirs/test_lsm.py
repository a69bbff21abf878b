"""The Maass et al. (2002) liquid: structure against the stated formulas, native engine against Brian2."""

import numpy as np
import pytest

from reservoirs import LSM, tasks
from reservoirs.lsm import MAASS2002


@pytest.fixture(scope="module")
def lsms():
    return [LSM.maass2002(seed=s) for s in range(6)]


def test_neuron_counts_types_and_grid(lsms):
    lsm = lsms[0]
    assert lsm.n_neurons == 135 and lsm.n_exc == 108
    assert (lsm.types == "E").sum() == 108 and (lsm.types == "I").sum() == 27
    grid = np.stack(np.meshgrid(np.arange(15), np.arange(3), np.arange(3), indexing="ij"), -1).reshape(-1, 3)
    assert sorted(map(tuple, lsm.positions)) == sorted(map(tuple, grid.astype(float)))
    net = lsm.network()
    E, I = net["E"], net["I"]
    assert E.n == 108 and I.n == 27
    np.testing.assert_array_equal(E.params["t_ref"], 3.0)
    np.testing.assert_array_equal(I.params["t_ref"], 2.0)
    for pop in (E, I):
        for key, value in dict(tau_m=30.0, v_th=15.0, v_reset=13.5, I_bg=13.5, R=1.0, tau_e=3.0, tau_i=6.0).items():
            np.testing.assert_array_equal(pop.params[key], value)
    for name, receptor, delay in (("EE", "exc", 1.5), ("EI", "exc", 0.8), ("IE", "inh", 0.8), ("II", "inh", 0.8),
                                  ("inE", "exc", 0.8), ("inI", "exc", 0.8)):
        proj = net[name]
        assert proj.dynamic and proj.receptor == receptor
        np.testing.assert_array_equal(proj.delay, delay)
        assert not np.any((proj.i == proj.j) & (proj.pre is proj.post))  # no autapses


def test_connection_counts_match_the_distance_formula(lsms):
    for (a, b), p in MAASS2002.items():
        count, expected, var, dist_sum, dist_expected = 0, 0.0, 0.0, 0.0, 0.0
        for lsm in lsms:
            net = lsm.network()
            pre, post = lsm.positions[lsm.types == a], lsm.positions[lsm.types == b]
            D = np.linalg.norm(pre[:, None] - post[None], axis=2)
            prob = p["C"] * np.exp(-((D / 2.0) ** 2))
            if a == b:
                np.fill_diagonal(prob, 0.0)
            proj = net[a + b]
            count += proj.n_synapses
            expected += prob.sum()
            var += (prob * (1 - prob)).sum()
            dist_sum += D[proj.i, proj.j].sum()
            dist_expected += (prob * D).sum()
        assert abs(count - expected) < 4 * np.sqrt(var), (a, b, count, expected)
        # the distance profile: mean distance of the drawn connections vs the formula's
        assert dist_sum / count == pytest.approx(dist_expected / expected, rel=0.15), (a, b)


def test_synapse_parameter_distributions(lsms):
    for (a, b), p in MAASS2002.items():
        pools = {k: np.concatenate([getattr(lsm.network()[a + b], k) for lsm in lsms]) for k in ("w", "U", "D", "F")}
        w = pools["w"]
        n = w.size
        assert np.all(np.sign(w) == np.sign(p["A"]))
        assert abs(w.mean() - p["A"]) < 5 * abs(p["A"]) / np.sqrt(n)  # gamma: SD = mean
        if n > 100:
            assert np.std(w) == pytest.approx(abs(p["A"]), rel=0.25)
        for key in ("U", "D", "F"):
            assert pools[key].min() > 0
            assert pools[key].mean() == pytest.approx(p[key], rel=0.15 if n > 100 else 0.4), (a, b, key)
        assert pools["U"].max() <= 1.0


def test_readout_states_shape_and_determinism(lsms):
    samples, _, _ = tasks.spike_template_task(3, n_channels=4, duration=200.0, seed=1)
    lsm = lsms[0]
    states = lsm.run(samples, 200.0, sample_times=[50.0, 100.0, 200.0])
    assert states.shape == (3, 3, 135)
    assert states.max() > 0  # the liquid responds
    np.testing.assert_array_equal(states, lsm.run(samples, 200.0, sample_times=[50.0, 100.0, 200.0]))
    rates = lsm.rates()
    assert set(rates) == {"E", "I"} and rates["E"].shape == (3,)
    with pytest.raises(ValueError, match="n_inputs"):
        lsm.run([samples[0][:2]], 100.0)
    with pytest.raises(ValueError, match="engine"):
        lsm.run(samples, 100.0, engine="nest")
    with pytest.raises(ValueError, match=">= 0"):
        lsm.run([[np.array([-1.0]), [], [], []]], 100.0)


def test_states_are_batch_time_units_and_a_batch_equals_its_trials(lsms):
    """``run`` gives (B, K, N): trial b's states at the sample times, as when trial b runs alone."""
    samples, _, _ = tasks.spike_template_task(3, n_channels=4, duration=100.0, seed=2)
    lsm, seeds = lsms[2], [31, 32, 33]
    states = lsm.run(samples, 100.0, sample_every=20.0, seed=seeds)
    assert states.shape == (3, 5, 135) and states.flags.c_contiguous
    assert not np.array_equal(states[0], states[1])
    for b in range(3):
        np.testing.assert_array_equal(lsm.run([samples[b]], 100.0, sample_every=20.0, seed=[seeds[b]])[0], states[b])
    # the units are E then I, each the population's filtered spike train at the sample time
    traces = lsm.last_network.monitors
    assert [m.source.name for m in traces[:2]] == ["E", "I"]


def test_separation_grows_with_input_distance(lsms):
    lsm = lsms[1]
    rng = np.random.default_rng(2)
    _, _, templates = tasks.spike_template_task(1, n_templates=3, n_channels=4, duration=300.0, seed=3)
    jitters = (0.0, 1.0, 4.0, 16.0)
    inputs, seeds = [], []
    for k, tpl in enumerate(templates):
        for jitter in jitters:
            moved = [np.sort(np.clip(t + jitter * rng.standard_normal(t.size), 0, 299.9)) for t in tpl]
            inputs += [tpl, moved]
            seeds += [100 + k, 100 + k]  # both members of a pair start from the same voltages
    states = lsm.run(inputs, 300.0, sample_every=10.0, seed=seeds)
    dist = np.linalg.norm(states[0::2] - states[1::2], axis=2).mean(axis=1).reshape(len(templates), len(jitters))
    mean = dist.mean(axis=0)
    assert mean[0] == 0.0
    assert mean[1] < mean[2] < mean[3]


@pytest.mark.brian2
def test_native_and_brian2_engines_agree():
    pytest.importorskip("brian2")
    lsm = LSM.maass2002(seed=4)
    samples, _, _ = tasks.spike_template_task(1, n_channels=4, duration=200.0, rate=40.0, seed=5)
    native = lsm.run(samples, 200.0, sample_every=10.0)
    native_rates = lsm.rates()
    ref = lsm.run(samples, 200.0, sample_every=10.0, engine="brian2")
    ref_rates = lsm.rates()
    assert native_rates["E"][0] > 1.0  # the network is active
    for pop in ("E", "I"):
        np.testing.assert_allclose(native_rates[pop], ref_rates[pop], rtol=0.05)
    np.testing.assert_allclose(native, ref, atol=1e-6)


def test_static_input_synapses_keep_the_liquid_active_under_steady_input():
    rng = np.random.default_rng(0)
    trials = [[np.sort(rng.uniform(0, 300.0, rng.poisson(6))) for _ in range(4)] for _ in range(6)]
    traces = {}
    for kind in ("dynamic", "static"):
        lsm = LSM.maass2002(seed=1, input_synapses=kind)
        traces[kind] = lsm.run(trials, 300.0, sample_times=[30.0, 300.0]).mean(axis=(0, 2))
        net = lsm.network()
        assert net["inE"].dynamic == net["inI"].dynamic == (kind == "dynamic")
        assert net["EE"].dynamic  # the recurrent synapses keep their dynamics either way
    # depressing input synapses: the response to steady 20 Hz input decays; static ones sustain it
    assert traces["dynamic"][1] < 0.25 * traces["dynamic"][0]
    assert traces["static"][1] > 5 * traces["dynamic"][1]
    with pytest.raises(ValueError, match="input_synapses must be one of"):
        LSM.maass2002(input_synapses="plastic")
