"""ESN behaviour: shapes, batching, closed loop, feedback (vs ReservoirPy), FORCE, tasks, bad input."""

import numpy as np
import pytest

from reservoirs import ESN, RLS, UnstableReservoirWarning, metrics, tasks


@pytest.fixture(scope="module")
def esn():
    return ESN(120, spectral_radius=0.9, leak_rate=0.5, bias_scaling=0.2, seed=0)


def test_run_shapes_batches_lists_and_h0(esn):
    rng = np.random.default_rng(1)
    u = rng.uniform(-1, 1, (3, 80, 2))
    batched = esn.run(u)
    assert batched.shape == (3, 80, 120)
    for b in range(3):
        np.testing.assert_allclose(esn.run(u[b]), batched[b], rtol=0, atol=1e-13)
    listed = esn.run([u[0], u[1, :50]])
    assert isinstance(listed, list) and listed[1].shape == (50, 120)
    np.testing.assert_allclose(listed[1], batched[1, :50], rtol=0, atol=1e-13)
    # h0 is the state before step 0: running the second half from the state after the first half
    first = esn.run(u[0, :40])
    np.testing.assert_allclose(esn.run(u[0, 40:], h0=first[-1]), batched[0, 40:], rtol=0, atol=1e-13)
    # (B, N) initial states per sequence
    h0 = rng.uniform(-1, 1, (3, 120))
    np.testing.assert_allclose(esn.run(u, h0=h0)[2], esn.run(u[2], h0=h0[2]), rtol=0, atol=1e-13)


def test_same_seed_same_reservoir_and_float32():
    a = ESN(50, seed=3)
    b = ESN(50, seed=3)
    u = np.random.default_rng(2).uniform(-1, 1, (30, 1))
    np.testing.assert_array_equal(a.run(u), b.run(u))
    assert not np.array_equal(a.run(u), ESN(50, seed=4).run(u))
    c = ESN(50, seed=3, dtype="float32")
    s = c.run(u)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, a.run(u), atol=1e-5)
    assert a.W.nnz == round(0.1 * 50 * 50)


def test_initialize_draws_w_in_as_the_first_run_would():
    u = np.random.default_rng(2).uniform(-1, 1, (30, 2))
    eager = ESN(40, seed=5).initialize(2)
    assert eager.W_in.shape == (40, 2)
    lazy = ESN(40, seed=5)
    np.testing.assert_array_equal(lazy.run(u), eager.run(u))
    np.testing.assert_array_equal(lazy.W_in, eager.W_in)
    with pytest.raises(ValueError, match="features"):
        eager.initialize(3)
    with pytest.raises(TypeError, match="n_features"):
        eager.initialize(2.0)


def test_weights_changed_in_place_take_effect():
    esn = ESN(40, seed=6).initialize(1)
    u = np.random.default_rng(3).uniform(-1, 1, (30, 1))
    before = esn.run(u)
    esn.W.data *= 0.5
    esn.weights_changed()
    expected = ESN.from_weights(esn.W, esn.W_in, esn.bias).run(u)
    np.testing.assert_array_equal(esn.run(u), expected)
    assert not np.allclose(expected, before)


def test_fit_predict_one_dimensional_targets():
    esn = ESN(120, spectral_radius=0.9, input_scaling=0.3, bias_scaling=0.2, seed=0)
    rng = np.random.default_rng(5)
    u = rng.uniform(-1, 1, (600, 2))
    y = np.roll(u[:, 0], 2) * 0.5  # recall two steps back
    esn.fit(u, y, warmup=20)
    p = esn.predict(u)
    assert p.shape == (600,)
    assert metrics.nrmse(y[20:], p[20:]) < 0.1  # measured 0.043
    pb = esn.predict(u[None].repeat(2, axis=0))
    assert pb.shape == (2, 600)


def test_mackey_glass_one_step_and_closed_loop_forecast():
    x = tasks.mackey_glass(4000, seed=0)
    xs = (x - x.mean()) / x.std()
    esn = ESN(300, spectral_radius=0.9, leak_rate=0.3, input_scaling=0.5, input_connectivity=1.0,
              bias_scaling=0.2, ridge=1e-8, seed=2)
    esn.fit(xs[:2999], xs[1:3000], warmup=100)
    one_step = esn.predict(xs[2900:3999])[100:]
    assert metrics.nrmse(xs[3001:4000], one_step) < 0.01  # measured 3.6e-4
    forecast = esn.generate(100, xs[:3000])
    assert forecast.shape == (100, 1)
    assert metrics.nrmse(xs[3000:3100], forecast) < 0.1  # measured 6e-3: still on the true trajectory
    # a long free run stays on the attractor: same range, no blow-up or collapse to a fixed point
    long_run = esn.generate(1000, xs[:3000])
    assert xs.min() - 0.2 < long_run.min() and long_run.max() < xs.max() + 0.2
    assert long_run[500:].std() > 0.5 * xs.std()
    # batched contexts forecast like single ones
    both = esn.generate(20, np.stack([xs[:3000], xs[100:3100]]))
    np.testing.assert_allclose(both[0], forecast[:20], rtol=0, atol=1e-12)


def test_narma10_nrmse_bound():
    u, y = tasks.narma10(5000, seed=0)
    esn = ESN(300, spectral_radius=0.95, input_scaling=0.2, input_connectivity=1.0, bias_scaling=0.2,
              ridge=1e-8, seed=1)
    esn.fit(u[:4000], y[:4000], warmup=200)
    score = metrics.nrmse(y[4200:], esn.predict(u[4000:])[200:])
    assert score < 0.25  # measured 0.16 with these settings


def test_feedback_esn_equals_reservoirpy_feedback_model():
    rpy = pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import Reservoir, Ridge as RRidge

    rng = np.random.default_rng(0)
    esn = ESN(100, spectral_radius=0.8, leak_rate=0.5, feedback=True, feedback_scaling=0.5, ridge=1e-4, seed=1)
    u = rng.uniform(-1, 1, (600, 1))
    y = np.sin(np.arange(600) / 8.0)[:, None] * 0.5 + 0.2 * u
    esn.fit(u[:400], y[:400])  # teacher forcing: y[t-1] is fed back
    ours = esn.predict(u[400:])  # closed loop: the ESN's own outputs are fed back
    model = rpy.ESN(
        reservoir=Reservoir(W=esn.W.copy(), Win=np.hstack([esn.W_in, esn.W_fb]), bias=esn.bias.copy(), lr=0.5),
        readout=RRidge(ridge=1e-4), feedback=True,
    )
    model.fit(u[:400], y[:400])
    np.testing.assert_allclose(esn.readout.coef_, model.readout.Wout.T, rtol=0, atol=1e-7)
    model.reset()
    np.testing.assert_allclose(ours, model.run(u[400:]), rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="y_feedback"):
        ESN(20, feedback=True, seed=0).run(u)


def test_force_learning_produces_a_sine_in_closed_loop():
    T = 2300
    y = 0.5 * np.sin(np.arange(T) / 10.0)[:, None]
    u = np.zeros((T, 1))
    with pytest.warns(UnstableReservoirWarning):
        esn = ESN(200, spectral_radius=1.5, leak_rate=0.3, feedback=True, input_connectivity=0.5,
                  bias_scaling=0.2, seed=3)
    z = esn.fit_online(u[:2000], y[:2000], readout=RLS(1.0), warmup=100)
    assert z.shape == (2000, 1)
    assert metrics.nrmse(y[1500:2000], z[1500:]) < 0.15  # measured 0.04: FORCE keeps the error small
    free = esn.predict(u[2000:], h0=esn.last_state_)
    assert metrics.nrmse(y[2000:], free) < 0.3  # measured 0.05: the trained loop keeps generating the sine


def test_rls_online_without_feedback_matches_offline_fit():
    esn = ESN(40, seed=4, ridge=1e-3)
    rng = np.random.default_rng(4)
    u = rng.uniform(-1, 1, (500, 1))
    y = np.roll(u, 1)
    esn.fit_online(u, y, readout=RLS(1e-3))
    online = esn.predict(u)
    esn.fit(u, y)
    np.testing.assert_allclose(online, esn.predict(u), atol=1e-4)


def test_bad_input_errors_and_warnings():
    with pytest.raises(ValueError, match="spectral_radius"):
        ESN(10, spectral_radius=0.0)
    with pytest.raises(ValueError, match="spectral_radius"):
        ESN(10, spectral_radius=-0.5)
    for leak in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="leak_rate"):
            ESN(10, leak_rate=leak)
    with pytest.raises(ValueError, match="activation"):
        ESN(10, activation="relu")
    with pytest.raises(ValueError, match="connectivity"):
        ESN(10, connectivity=0.0)
    with pytest.raises(TypeError, match="units"):
        ESN(10.5)
    with pytest.warns(UnstableReservoirWarning, match="spectral_radius"):
        ESN(20, spectral_radius=1.0, seed=0)
    with pytest.warns(UnstableReservoirWarning):
        ESN.from_weights(np.eye(5) * 1.2, np.ones((5, 1)))
    esn = ESN(20, seed=0)
    u = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    esn.fit(u, u[:, :1])
    with pytest.raises(ValueError, match="features"):
        esn.run(u[:, :1])
    with pytest.raises(ValueError, match="features"):
        esn.predict(np.ones((10, 3)))
    bad = u.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        esn.run(bad)
    with pytest.raises(ValueError, match="NaN"):
        esn.fit(bad, u[:, :1])
    with pytest.raises(ValueError, match="same"):
        esn.fit(u, u[:-1, :1])
    with pytest.raises(ValueError, match="warmup"):
        esn.fit(u, u[:, :1], warmup=50)
    with pytest.raises(ValueError, match="h0"):
        esn.run(u, h0=np.zeros(7))
    with pytest.raises(RuntimeError, match="not fitted"):
        ESN(20, seed=0).predict(u)
    with pytest.raises(ValueError, match="W_in"):
        ESN.from_weights(np.zeros((5, 5)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="square"):
        ESN.from_weights(np.zeros((5, 4)), np.ones((5, 1)))
    with pytest.raises(ValueError, match="outputs"):
        esn.generate(5, u)  # 1 output for 2 input features
    with pytest.raises(TypeError, match="hold real numbers"):
        esn.run(np.array([["a", "b"]]))


def test_component_protocol_steps_like_run():
    esn = ESN(30, seed=7, input_dim=2)
    assert esn.ports == {"inputs": {"u": 2}, "outputs": {"x": 30}}
    u = np.random.default_rng(8).uniform(-1, 1, (3, 20, 2))
    esn.reset(3)
    stepped = np.stack([esn.step(t, {"u": u[:, t]})["x"] for t in range(20)], axis=1)
    np.testing.assert_allclose(stepped, esn.run(u), rtol=0, atol=1e-13)
    esn.fit(u, u[..., :1])
    esn.reset(3)
    out = esn.step(0, {"u": u[:, 0]})
    np.testing.assert_allclose(out["y"], esn.predict(u[:, :1])[:, 0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        esn.step(1, {"u": u[:2, 0]})
    with pytest.raises(RuntimeError, match="input width"):
        ESN(10, seed=0).ports


def test_spike_template_classification_with_softmax_readout():
    from reservoirs import SoftmaxReadout

    samples, labels, _ = tasks.spike_template_task(240, n_templates=2, n_channels=4, duration=200.0, jitter=4.0, seed=9)
    u = tasks.bin_spikes(samples, 200.0, dt=5.0)  # (240, 40, 4) spike counts
    esn = ESN(100, spectral_radius=0.9, leak_rate=0.2, input_scaling=0.5, seed=10)
    features = esn.run(u).mean(axis=1)  # time-averaged states (240, 100)
    clf = SoftmaxReadout(l2=1e-3).fit(features[:160], labels[:160])
    assert clf.score(features[160:], labels[160:]) > 0.9


@pytest.mark.gpu
def test_esn_on_cupy_equals_numpy():
    import cupy

    from neuro.backend import gpu_available

    if not gpu_available():  # pragma: no cover
        pytest.skip("no CUDA GPU")
    esn = ESN(80, leak_rate=0.5, bias_scaling=0.1, seed=11)
    u = np.random.default_rng(12).uniform(-1, 1, (4, 50, 2))
    ref = esn.run(u)
    # cuSPARSE's summation order and CUDA's tanh round differently from SciPy and NumPy: ~1e-15 per step
    np.testing.assert_allclose(cupy.asnumpy(esn.run(cupy.asarray(u))), ref, rtol=0, atol=1e-10)
    esn.fit(u, u[..., :1])
    np.testing.assert_allclose(cupy.asnumpy(esn.predict(cupy.asarray(u))), esn.predict(u), rtol=0, atol=1e-8)
    # reassigned weights are copied to the device again (the cache once keyed on id(), which can be reused)
    esn.W_in = esn.W_in * 2.0
    esn.W = esn.W * 0.5
    np.testing.assert_allclose(cupy.asnumpy(esn.run(cupy.asarray(u))), esn.run(u), rtol=0, atol=1e-10)


def test_tau_gives_the_leak_rate_and_runs_inside_a_simulator():
    from neuro import Simulator

    u = np.random.default_rng(13).uniform(-1, 1, (2, 50, 1))
    timed = ESN(60, tau=2.0, dt=0.5, input_dim=1, seed=14)
    plain = ESN(60, leak_rate=0.25, input_dim=1, seed=14)
    assert timed.leak_rate == 0.25 and timed.dt == 0.5
    np.testing.assert_array_equal(timed.run(u), plain.run(u))
    sim = Simulator(dt=0.5)
    sim.add("esn", timed)
    mon = sim.monitor("esn.x")
    sim.reset(batch_size=2).run(25.0, inputs={"esn.u": u})
    got = mon.values  # (B, T, N)
    assert got.shape == (2, 50, 60)
    np.testing.assert_allclose(got, plain.run(u), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="dt=0.5 ms"):
        Simulator(dt=0.1).add("esn", timed)
    with pytest.raises(ValueError, match="tau needs dt"):
        ESN(10, tau=2.0)
    with pytest.raises(ValueError, match="either leak_rate or tau"):
        ESN(10, tau=2.0, dt=0.1, leak_rate=0.5)
    with pytest.raises(ValueError, match="larger than tau"):
        ESN(10, tau=0.05, dt=0.1)
    made = ESN.from_weights(np.eye(3) * 0.5, np.ones((3, 1)), tau=4.0, dt=1.0)
    assert made.leak_rate == 0.25


def test_diverging_identity_reservoir_warns_at_run():
    with pytest.warns(UnstableReservoirWarning, match="spectral_radius"):
        esn = ESN(50, spectral_radius=1.5, activation="identity", seed=0)
    with pytest.warns(UnstableReservoirWarning, match=r"diverged to inf/NaN \(activation='identity', spectral_radius=1.5"):
        states = esn.run(np.ones((3000, 1)))
    assert not np.isfinite(states).all()


def test_run_on_an_empty_sequence_gives_no_states():
    esn = ESN(10, seed=0)
    assert esn.run(np.ones((0, 1))).shape == (0, 10)
    assert esn.run(np.ones((2, 0, 1))).shape == (2, 0, 10)
