"""Our ESN and Ridge against ReservoirPy 0.4 with the same matrices (the reference implementation)."""

import numpy as np
import pytest
import scipy.sparse

from reservoirs import ESN, Ridge

rpy_nodes = pytest.importorskip("reservoirpy.nodes")


def _esn(units=200, leak=0.3, seed=0, **kw):
    return ESN(units, spectral_radius=0.9, leak_rate=leak, bias_scaling=0.5, input_connectivity=0.5, seed=seed, **kw)


def _rpy_reservoir(esn):
    return rpy_nodes.Reservoir(W=esn.W.copy(), Win=esn.W_in.copy(), bias=esn.bias.copy(), lr=esn.leak_rate)


@pytest.mark.parametrize("leak", [1.0, 0.3])
@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_states_equal_reservoirpy_single_sequence(leak, activation):
    rng = np.random.default_rng(1)
    u = rng.uniform(-1, 1, (400, 3))
    esn = _esn(leak=leak, activation=activation)
    ours = esn.run(u)
    ref = rpy_nodes.Reservoir(
        W=esn.W.copy(), Win=esn.W_in.copy(), bias=esn.bias.copy(), lr=leak, activation=activation
    ).run(u)
    assert ours.shape == (400, 200)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    assert np.abs(ours).max() > 0.1  # the comparison is not between two near-zero arrays


def test_states_equal_reservoirpy_batched_and_dense_weights():
    rng = np.random.default_rng(2)
    u = rng.uniform(-1, 1, (5, 300, 2))
    W = rng.standard_normal((120, 120)) * (0.8 / np.sqrt(120))  # dense W, spectral radius ~0.8
    W_in = rng.uniform(-1, 1, (120, 2))
    bias = rng.uniform(-0.2, 0.2, 120)
    esn = ESN.from_weights(W, W_in, bias, leak_rate=0.5)
    ours = esn.run(u)
    ref = rpy_nodes.Reservoir(W=W, Win=W_in, bias=bias, lr=0.5).run(u)  # each sequence from the zero state
    assert ours.shape == (5, 300, 120)
    np.testing.assert_allclose(ours, np.asarray(ref), rtol=0, atol=1e-10)
    # scipy.sparse weights give the same states as dense ones
    sparse = ESN.from_weights(scipy.sparse.csc_matrix(W), W_in, bias, leak_rate=0.5)
    np.testing.assert_allclose(sparse.run(u), ours, rtol=0, atol=1e-12)


def test_long_sequence_chunks_equal_reservoirpy():
    # longer than one chunk of the input drive (chunking must carry the state across)
    rng = np.random.default_rng(3)
    esn = _esn(units=100)
    u = rng.uniform(-1, 1, (2, 25_000, 1))
    ours = esn.run(u)
    ref = _rpy_reservoir(esn).run(u[1])
    np.testing.assert_allclose(ours[1], ref, rtol=0, atol=1e-10)


def test_ridge_equals_reservoirpy_ridge():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((500, 30)) + 3.0
    y = X @ rng.standard_normal((30, 2)) + 5.0 + 0.1 * rng.standard_normal((500, 2))
    X_test = rng.standard_normal((50, 30))
    for ridge in (1e-6, 10.0):
        ours = Ridge(ridge).fit(X, y)
        ref = rpy_nodes.Ridge(ridge=ridge).fit(X, y)
        np.testing.assert_allclose(ours.predict(X_test), ref.run(X_test), rtol=1e-9, atol=1e-9)


def test_esn_fit_predict_equals_reservoirpy_pipeline():
    rng = np.random.default_rng(5)
    # every unit driven by the input: with input-free units the states are nearly collinear and the two
    # ridge solvers (Cholesky here, ReservoirPy's solve) differ by the conditioning (~1e-7 on outputs ~10)
    esn = _esn(units=150, ridge=1e-3, connect_every_unit=True)
    u = rng.uniform(-1, 1, (1200, 1))
    y = np.roll(u, 3, axis=0) * np.roll(u, 1, axis=0)
    esn.fit(u[:900], y[:900], warmup=50)
    ours = esn.predict(u[900:])
    res, readout = _rpy_reservoir(esn), rpy_nodes.Ridge(ridge=1e-3)
    readout.fit(res.run(u[:900])[50:], y[50:900])
    res.reset()
    ref = readout.run(res.run(u[900:]))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-8)


def test_multi_sequence_fit_accumulates_like_reservoirpy():
    rng = np.random.default_rng(6)
    esn = _esn(units=80, ridge=1e-4)
    us = [rng.uniform(-1, 1, (n, 2)) for n in (300, 250, 400)]
    ys = [np.cumsum(s[:, :1], axis=0) * 0.1 for s in us]
    esn.fit(us, ys, warmup=20)
    res = _rpy_reservoir(esn)
    readout = rpy_nodes.Ridge(ridge=1e-4)
    states = []
    for s in us:  # every sequence from the zero state, as ours
        states.append(res.run(s))
        res.reset()
    readout.fit(states, ys, warmup=20)
    test = rng.uniform(-1, 1, (100, 2))
    np.testing.assert_allclose(esn.predict(test), readout.run(res.run(test)), rtol=0, atol=1e-8)
