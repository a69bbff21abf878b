"""Rules attached to the substrates: neuro projections (CSR), ann.nn.Linear, reservoirs.ESN, the coupling protocol."""

import numpy as np
import pytest

import plasticity as P

neuro = pytest.importorskip("neuro")


# ------------------------------------------------------------ neuro.Network


def test_shared_stdp_on_projection_equals_dense_replay_of_the_recorded_spikes():
    net = neuro.Network(dt=0.5, seed=1)
    inp = net.poisson(10, rates=60.0, name="in")
    out = net.population(3, neuro.LIF(tau_m=20.0, I_bg=15.5), name="out")
    proj = net.connect(inp, out, "fixed_probability", p=0.6, weight=0.5)
    rule = P.STDP(a_plus=0.01, a_minus=0.012, dt=0.5, w_min=0.0, w_max=1.0)
    record = []
    net.add_hook(lambda _net, _n: record.append((inp.spikes.copy(), out.spikes.copy())))  # runs before the rule
    hook = P.attach_to_network(net, proj, rule, weights="shared")  # one weight vector: the batch-averaged step
    net.reset(batch_size=2)
    assert proj.w.shape == (proj.n_synapses,)
    W0 = proj.weight_matrix()
    mask = W0 != 0
    net.run(150.0)
    assert sum(r[1].sum() for r in record) > 5 and sum(r[0].sum() for r in record) > 50
    W = W0.copy()
    state = rule.init_state(W.shape, batch_size=2)
    for pre, post in record:
        rule.step(W, pre, post, state)
    W_net = proj.weight_matrix()
    np.testing.assert_allclose(W_net[mask], W[mask], rtol=1e-12, atol=1e-14)
    assert np.all(W_net[~mask] == 0)  # no synapse appears
    assert np.abs(W_net - W0).max() > 1e-3
    np.testing.assert_allclose(hook.state["pre_trace"], state["pre_trace"])
    # a reset starts the traces afresh
    net.reset(batch_size=1)
    net.run(1.0)
    assert hook.state["pre_trace"].shape == (1, 10)


def test_stdp_in_a_spiking_network_strengthens_correlated_inputs():
    n, half, dt, T, B, c, w0 = 40, 20, 1.0, 5000.0, 2, 0.3, 2.0
    spikes = neuro.correlated_spike_times(n, half, 10.0, c, T, dt, trials=B, seed=0)  # 10 Hz
    net = neuro.Network(dt=dt, seed=0)
    inp = net.spike_times(n, *spikes, name="in")
    out = net.population(1, neuro.LIF(I_bg=13.0), name="out")
    proj = net.connect(inp, out, "all_to_all", weight=w0)
    rule = P.STDP(a_plus=0.04, a_minus=0.048, tau_plus=20.0, tau_minus=20.0, dt=dt, w_min=0.0, w_max=2 * w0)
    P.attach_to_network(net, proj, rule)
    net.reset(batch_size=B)
    net.run(T)
    corr, indep = proj.w[:, proj.i < half].mean() / w0, proj.w[:, proj.i >= half].mean() / w0  # (B, S)
    assert corr > 1.1 and corr > indep + 0.15, (corr, indep)


def _plastic_net(impl="cpu", weights="per_trial"):
    """Poisson inputs -> 5 LIF neurons (static synapses, STDP by the compiled kernel) and E -> E
    (Tsodyks-Markram synapses, STDP with a Clip constraint: the general NumPy path)."""
    net = neuro.Network(dt=0.5, seed=1, impl=impl)
    inp = net.poisson(12, rates=60.0, name="in")
    E = net.population(5, neuro.LIF(tau_m=20.0, I_bg=15.5), name="E")
    ff = net.connect(inp, E, "fixed_probability", p=0.6, weight=0.5, delay=1.0)
    rec = net.connect(E, E, "all_to_all", weight=0.3, delay=1.5, U=0.5, D=200.0, F=50.0)
    P.attach_to_network(net, ff, P.STDP(a_plus=0.02, a_minus=0.024, dt=0.5, w_min=0.0, w_max=1.0), weights=weights)
    P.attach_to_network(net, rec, P.STDP(a_plus=0.02, a_minus=0.024, dt=0.5, w_min=None, w_max=None,
                                         constraints=(P.Clip(0.0, 0.6),)), weights=weights)
    return net, (ff, rec), net.monitor_spikes(E)


@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_per_trial_plastic_batch_equals_single_trial_runs(impl):
    seeds = [5, 6, 7]
    net, projs, mon = _plastic_net(impl)
    net.reset(batch_size=3, seed=seeds)
    net.run(200.0)
    assert mon.count.sum() > 30
    for proj in projs:
        assert proj.w.shape == (3, proj.n_synapses)
        assert np.abs(proj.w - proj.w_init).max() > 1e-3  # they learned
        assert np.abs(proj.w[0] - proj.w[1]).max() > 1e-3  # each trial its own way
    for b, seed in enumerate(seeds):
        one, projs1, mon1 = _plastic_net(impl)
        one.reset(batch_size=1, seed=[seed])
        one.run(200.0)
        np.testing.assert_array_equal(mon1.count[0], mon.count[b])
        np.testing.assert_array_equal(mon1.t, mon.t[mon.trial == b])
        np.testing.assert_array_equal(mon1.i, mon.i[mon.trial == b])
        for proj1, proj in zip(projs1, projs):
            np.testing.assert_array_equal(proj1.w[0], proj.w[b])
            np.testing.assert_array_equal(proj1.weight_matrix(trial=0), proj.weight_matrix(trial=b))


def test_per_trial_weights_restart_from_w_init_at_reset():
    net, (ff, _), _ = _plastic_net()
    w0 = ff.w.copy()
    net.reset(batch_size=2, seed=3)
    np.testing.assert_array_equal(ff.w_init, w0)
    np.testing.assert_array_equal(ff.w, np.stack([w0, w0]))
    net.run(100.0)
    learned = ff.w.copy()
    assert np.abs(learned - w0).max() > 1e-3
    assert ff.weight_matrix().shape == (2, 5, 12)
    np.testing.assert_array_equal(ff.weight_matrix()[1], ff.weight_matrix(trial=1))
    # a reset starts the trials again from w_init: the same seed learns the same weights
    net.reset(batch_size=2, seed=3)
    np.testing.assert_array_equal(ff.w, np.stack([w0, w0]))
    net.run(100.0)
    np.testing.assert_array_equal(ff.w, learned)
    # writing into w changes the current trials only; w_init is where resets start
    ff.w[...] = 0.25
    net.reset(batch_size=1)
    np.testing.assert_array_equal(ff.w[0], w0)
    ff.w_init[...] = 0.2
    net.reset(batch_size=4)
    assert ff.w.shape == (4, ff.n_synapses) and np.all(ff.w == 0.2)
    # assigning new (S,) weights makes them the starting weights
    ff.w = np.full(ff.n_synapses, 0.1)
    net.reset(batch_size=2)
    assert np.all(ff.w_init == 0.1) and np.all(ff.w == 0.1)


def test_per_trial_attached_after_reset_and_shared_mode_keeps_one_vector():
    net = neuro.Network(dt=0.5, seed=1)
    inp = net.poisson(10, rates=60.0, name="in")
    out = net.population(3, neuro.LIF(tau_m=20.0, I_bg=15.5), name="out")
    proj = net.connect(inp, out, "fixed_probability", p=0.6, weight=0.5)
    net.reset(batch_size=3)
    P.attach_to_network(net, proj, P.STDP(dt=0.5))  # already reset: the trials get their own weights now
    assert proj.per_trial_weights and proj.w.shape == (3, proj.n_synapses)
    np.testing.assert_array_equal(proj.w_init, 0.5)
    shared, (ff, rec), _ = _plastic_net(weights="shared")
    shared.reset(batch_size=3)
    shared.run(50.0)
    assert not ff.per_trial_weights and ff.w.shape == (ff.n_synapses,) and ff.weight_matrix(trial=2).shape == (5, 12)
    assert np.abs(ff.w - 0.5).max() > 1e-3


def test_attach_to_network_validates():
    net = neuro.Network(dt=0.1)
    a = net.population(2, name="a")
    proj = net.connect(a, a, "all_to_all", weight=0.1)
    other = neuro.Network(dt=0.1)
    b = other.population(2, name="b")
    other_proj = other.connect(b, b, "all_to_all", weight=0.1)
    with pytest.raises(ValueError, match="rule.dt"):
        P.attach_to_network(net, proj, P.STDP(dt=1.0))
    with pytest.raises(ValueError, match="projection must be a projection of net"):
        P.attach_to_network(net, other_proj, P.STDP(dt=0.1))
    with pytest.raises(TypeError, match="not local"):
        P.attach_to_network(net, proj, P.Sanger())
    with pytest.raises(ValueError, match="weights must be one of"):
        P.attach_to_network(net, proj, P.STDP(dt=0.1), weights="per-trial")
    with pytest.raises(ValueError, match="one state for all trials"):
        P.attach_to_network(net, proj, P.BCM(), weights="per_trial")
    P.attach_to_network(net, proj, P.STDP(dt=0.1), weights="shared")
    with pytest.raises(ValueError, match="already 'shared'"):
        P.attach_to_network(net, proj, P.STDP(dt=0.1))
    c = net.population(2, name="c")
    per_trial = net.connect(a, c, "all_to_all", weight=0.1)
    P.attach_to_network(net, per_trial, P.STDP(dt=0.1))
    with pytest.raises(ValueError, match="already 'per_trial'"):
        P.attach_to_network(net, per_trial, P.STDP(dt=0.1), weights="shared")
    net.reset(batch_size=2)
    with pytest.raises(ValueError, match=r"trial must be an int in \[0, 2\)"):
        per_trial.weight_matrix(trial=2)


# ------------------------------------------------------------- ann.nn.Linear


def test_sanger_on_an_ann_linear_layer_learns_principal_components():
    ann = pytest.importorskip("ann")
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    cov = q @ np.diag([4.0, 2.0, 1.0, 0.3, 0.2, 0.1]) @ q.T
    X = rng.multivariate_normal(np.zeros(6), cov, size=4000).astype(np.float32)
    layer = ann.nn.Linear(6, 2, bias=False, seed=1)
    weight_array = layer.weight.data
    rule = P.Sanger(lr=0.005)
    for _ in range(4):
        for s in range(0, len(X), 10):
            y = P.step_layer(layer, rule, X[s:s + 10])
    assert layer.weight.data is weight_array and weight_array.dtype == np.float32  # updated in place
    W = layer.weight.data.astype(float)
    for k in range(2):
        assert abs(W[k] @ q[:, k]) / np.linalg.norm(W[k]) > 0.99
    # the layer's own forward uses the learned weights (features for a trained readout)
    feats = layer(ann.Tensor(X[:5])).data
    np.testing.assert_allclose(feats, X[:5] @ layer.weight.data.T, rtol=1e-5)
    # with a bias and an activation, post = f(x W^T + b)
    layer_b = ann.nn.Linear(6, 2, seed=2)
    W_before = layer_b.weight.data.copy()
    y = P.step_layer(layer_b, P.Hebb(lr=0.1), X[:3], activation="tanh")
    np.testing.assert_allclose(y, np.tanh(X[:3] @ W_before.T + layer_b.bias.data), rtol=1e-5)
    np.testing.assert_allclose(layer_b.weight.data, W_before + 0.1 * y.T @ X[:3] / 3, rtol=1e-5)
    with pytest.raises(TypeError, match="2-D weight"):
        P.step_layer(object(), P.Oja(), X[:1])


# ---------------------------------------------------------------------- ESN


def test_adapt_esn_runs_the_esn_update_and_keeps_sparsity():
    reservoirs = pytest.importorskip("reservoirs")
    rng = np.random.default_rng(3)
    u = rng.uniform(-1, 1, size=(300, 2))
    esn = reservoirs.ESN(50, spectral_radius=0.9, leak_rate=0.7, bias_scaling=0.2, seed=4)
    reference = reservoirs.ESN(50, spectral_radius=0.9, leak_rate=0.7, bias_scaling=0.2, seed=4)
    states = reference.run(u)
    # a vanishing learning rate leaves the weights as they are: the final state is the ESN's own
    res = P.adapt_esn(esn, u, rule=P.Hebb(lr=1e-300))
    np.testing.assert_allclose(res["last_state"], states[-1], rtol=1e-10, atol=1e-12)
    assert np.isclose(res["spectral_radius_before"], reservoirs.spectral_radius(reference.W), rtol=1e-6)
    # an anti-Hebbian rule on the recurrent nonzeros keeps the sparsity pattern
    nnz = esn.W.nnz
    pattern = esn.W.copy()
    res = P.adapt_esn(esn, u, rule=P.Foldiak(lr=0.01))
    assert esn.W.nnz == nnz and np.array_equal(esn.W.indices, pattern.indices)
    assert np.abs(esn.W.data - pattern.data).max() > 1e-4
    assert np.isclose(res["spectral_radius_after"], reservoirs.spectral_radius(esn.W), rtol=1e-6)
    # then the ESN is frozen and its readout trained as usual (one-step-ahead prediction of input 0)
    esn.fit(u[:-1], u[1:, :1], warmup=20)
    assert esn.predict(u[:-1]).shape == (299, 1)


def test_intrinsic_plasticity_moves_esn_outputs_toward_target():
    reservoirs = pytest.importorskip("reservoirs")
    rng = np.random.default_rng(5)
    u = rng.uniform(-1, 1, size=(1500, 1))
    esn = reservoirs.ESN(40, spectral_radius=0.9, input_scaling=1.0, input_connectivity=1.0, seed=6)
    ip = P.IntrinsicPlasticity(lr=0.002, activation="tanh", mu=0.0, sigma=0.2)
    before = esn.run(u)
    res = P.adapt_esn(esn, u, ip=ip, epochs=2)
    after = esn.run(u)  # the adapted ESN, frozen, run by its own code
    kl_b = np.mean([P.kl_to_target(before[200:, i], ip) for i in range(40)])
    kl_a = np.mean([P.kl_to_target(after[200:, i], ip) for i in range(40)])
    assert kl_a < 0.6 * kl_b, (kl_b, kl_a)
    assert res["ip_state"]["gain"].shape == (40,)
    # the gains scale the rows of W: the radius is re-checked
    assert np.isclose(res["spectral_radius_after"], reservoirs.spectral_radius(esn.W), rtol=1e-6)


def test_adapt_esn_validates_and_warns():
    reservoirs = pytest.importorskip("reservoirs")
    esn = reservoirs.ESN(10, spectral_radius=0.95, seed=0)
    u = np.ones((20, 1))
    with pytest.raises(ValueError, match="needs a rule, an ip"):
        P.adapt_esn(esn, u)
    with pytest.raises(ValueError, match="ip.activation"):
        P.adapt_esn(esn, u, ip=P.IntrinsicPlasticity(activation="sigmoid"))
    with pytest.raises(TypeError, match="not local"):
        P.adapt_esn(esn, u, rule=P.Sanger())
    with pytest.warns(P.PlasticityWarning, match="spectral radius"):
        P.adapt_esn(esn, np.random.default_rng(0).uniform(-1, 1, (50, 1)), rule=P.Hebb(lr=0.5))


# ------------------------------------------------------------ coupling protocol


def test_plastic_synapses_component_matches_train_and_speaks_the_protocol():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((50, 4))
    W0 = rng.standard_normal((2, 4)) * 0.3
    comp = P.PlasticSynapses(W0.copy(), P.BCM(lr=0.01), activation="tanh")
    assert comp.ports == {"inputs": {"pre": 4}, "outputs": {"out": 2}}
    comp.reset(batch_size=1, seed=0)
    outs = [comp.step(t, {"pre": X[t:t + 1]})["out"] for t in range(50)]
    ref = P.train(P.BCM(lr=0.01), W0, X, activation="tanh", shuffle=False)
    np.testing.assert_allclose(comp.W, ref.weights, rtol=1e-12)
    assert outs[0].shape == (1, 2)
    # a spike rule takes the postsynaptic spikes as an input port
    stdp = P.PlasticSynapses(np.full((1, 3), 0.5), P.STDP())
    assert stdp.ports["inputs"] == {"pre": 3, "post": 1}
    stdp.reset(batch_size=2)
    stdp.step(0, {"pre": np.array([[1, 0, 0], [1, 0, 0]]), "post": np.zeros((2, 1))})
    out = stdp.step(1, {"pre": np.zeros((2, 3)), "post": np.ones((2, 1))})["out"]
    assert out.shape == (2, 1)
    assert np.isclose(stdp.W[0, 0], 0.5 + 0.01 * np.exp(-1 / 20))
    with pytest.raises(ValueError, match="'post'"):
        stdp.step(2, {"pre": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="every=1"):
        P.PlasticSynapses(np.ones((1, 3)), P.STDP(), every=2)


# ---------------------------------------------------------------- Simulator


def test_stdp_on_a_simulator_connection_equals_dense_replay():
    sim = neuro.Simulator(dt=1.0, seed=3)
    src = neuro.Network(dt=1.0, seed=1)
    src.poisson(8, rates=80.0, name="in")
    tgt = neuro.Network(dt=1.0, seed=2)
    tgt.population(2, neuro.LIF(tau_m=20.0, I_bg=14.5), name="out")
    sim.add("src", src)
    sim.add("tgt", tgt)
    W = np.full((2, 8), 0.8)
    sim.connect("src.in.spikes", "tgt.out.I", weight=W)
    rule = P.STDP(a_plus=0.02, a_minus=0.024, dt=1.0, w_min=0.0, w_max=2.0)
    hook = P.attach_to_simulator(sim, "src.in.spikes", "tgt.out.I", rule, post="tgt.out.spikes")
    pre_mon, post_mon = sim.monitor("src.in.spikes"), sim.monitor("tgt.out.spikes")
    sim.reset(batch_size=2)
    W0 = hook.W.copy()
    sim.run(300.0)
    assert post_mon.values.sum() > 5 and pre_mon.values.sum() > 50
    W_ref = W0.copy()
    state = rule.init_state(W_ref.shape, batch_size=2)
    pre, post = pre_mon.values, post_mon.values  # (B, T, n)
    assert pre.shape == (2, 300, 8) and post.shape == (2, 300, 2)
    for k in range(pre.shape[1]):
        rule.step(W_ref, pre[:, k], post[:, k], state)
    np.testing.assert_allclose(hook.W, W_ref, rtol=1e-12)
    assert np.abs(hook.W - W0).max() > 1e-3
    with pytest.raises(ValueError, match="post must name an output port"):
        P.attach_to_simulator(sim, "src.in.spikes", "tgt.out.I", rule, post="tgt.nothing")
    with pytest.raises(ValueError, match="connections"):
        P.attach_to_simulator(sim, "src.in.spikes", "src.in.spikes", rule, post="tgt.out.spikes")


def test_plastic_synapses_inside_a_simulator_match_train():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    W0 = rng.standard_normal((2, 3)) * 0.3
    sim = neuro.Simulator(dt=1.0)
    syn = sim.add("syn", P.PlasticSynapses(W0.copy(), P.Oja(lr=0.02)))
    out = sim.monitor("syn.out")
    sim.reset(batch_size=1)
    sim.run(40.0, inputs={"syn.pre": X})
    ref = P.train(P.Oja(lr=0.02), W0, X, shuffle=False, record_every=1)
    np.testing.assert_allclose(syn.W, ref.weights, rtol=1e-12)
    # the output of tick k used the weights before that tick's update
    np.testing.assert_allclose(out.values[0], np.einsum("kij,kj->ki", ref.history[:-1], X), rtol=1e-12)
    with pytest.raises(ValueError, match="dt=1.0"):
        neuro.Simulator(dt=0.5).add("stdp", P.PlasticSynapses(np.ones((1, 2)), P.STDP(dt=1.0)))
