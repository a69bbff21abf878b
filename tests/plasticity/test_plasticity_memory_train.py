"""Hebbian outer-product storage, and the train() driver."""

import numpy as np
import pytest

import plasticity as P


def test_hebbian_storage_equals_explicit_sum_and_hebb_rule():
    rng = np.random.default_rng(0)
    xi = rng.choice([-1.0, 1.0], size=(5, 100))
    W = P.hebbian_storage(xi)
    manual = sum(np.outer(p, p) for p in xi) / 100
    np.fill_diagonal(manual, 0.0)
    np.testing.assert_allclose(W, manual)
    # the same as one batched Hebb step with lr = P / N (the batch is averaged) from zero weights
    W_hebb = np.zeros((100, 100))
    P.Hebb(lr=5 / 100).step(W_hebb, xi, xi)
    np.fill_diagonal(W_hebb, 0.0)
    np.testing.assert_allclose(W, W_hebb)
    # incremental storage into existing weights
    W_inc = P.hebbian_storage(xi[:2])
    out = P.hebbian_storage(xi[2:], W=W_inc)
    assert out is W_inc
    np.testing.assert_allclose(W_inc, W)
    np.testing.assert_allclose(P.hebbian_storage(xi, scale="p", zero_diagonal=False), xi.T @ xi / 5)


def test_stored_patterns_are_recalled_from_corrupted_probes():
    rng = np.random.default_rng(1)
    N, n_patterns = 200, 10  # load 0.05 << 0.138
    xi = rng.choice([-1.0, 1.0], size=(n_patterns, N))
    W = P.hebbian_storage(xi)
    np.testing.assert_array_equal(np.where(xi @ W.T >= 0, 1.0, -1.0), xi)  # fixed points
    probes = xi.copy()
    flip = rng.random(probes.shape) < 0.15
    probes[flip] *= -1
    np.testing.assert_array_equal(P.recall(W, probes), xi)


def test_hebbian_storage_validates():
    with pytest.raises(ValueError, match="patterns must have shape"):
        P.hebbian_storage(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="scale must be"):
        P.hebbian_storage(np.ones((2, 3)), scale="sqrt")
    with pytest.raises(ValueError, match=r"W must have shape \(3, 3\)"):
        P.hebbian_storage(np.ones((2, 3)), W=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="steps"):
        P.recall(np.eye(3), np.ones(3), steps=0)


def test_train_matches_a_plain_loop_and_records_history():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((23, 4))
    W0 = rng.standard_normal((3, 4)) * 0.2
    rule = P.BCM(lr=0.01, tau_theta=5.0)
    res = P.train(rule, W0, X, epochs=2, batch_size=5, activation="tanh", seed=9, record_every=2)
    # plain loop with the same permutations (make_rng(9) draws one permutation per epoch)
    order_rng = np.random.default_rng(9)
    W, state, snaps = W0.copy(), rule.init_state(W0.shape), [W0.copy()]
    k = 0
    for _ in range(2):
        Xe = X[order_rng.permutation(23)]
        for s in range(0, 23, 5):
            pre = Xe[s:s + 5]
            rule.step(W, pre, np.tanh(pre @ W.T), state)
            k += 1
            if k % 2 == 0:
                snaps.append(W.copy())
    np.testing.assert_allclose(res.weights, W, rtol=1e-13)
    np.testing.assert_allclose(res.state["theta"], state["theta"], rtol=1e-13)
    np.testing.assert_allclose(res.history, np.stack(snaps), rtol=1e-13)
    np.testing.assert_array_equal(res.steps, np.arange(0, 11, 2))
    assert res.history.shape == (6, 3, 4)
    np.testing.assert_array_equal(W0, W0.copy())  # the caller's weights are untouched
    assert P.train(rule, W0, X).history is None


def test_train_activations_and_validation():
    X = np.ones((4, 2))
    W0 = np.array([[-1.0, 0.5]])
    hebb = P.Hebb(lr=0.1)
    relu = P.train(hebb, W0, X, activation="relu", shuffle=False)
    np.testing.assert_array_equal(relu.weights, W0)  # y = relu(-0.5) = 0: nothing learned
    custom = P.train(hebb, W0, X, activation=lambda a: a * 0 + 1.0, shuffle=False)
    np.testing.assert_allclose(custom.weights, W0 + 0.4)
    sig = P.train(hebb, W0, X[:1], activation="sigmoid")
    np.testing.assert_allclose(sig.weights, W0 + 0.1 / (1 + np.exp(0.5)))
    with pytest.raises(ValueError, match="activation must be"):
        P.train(hebb, W0, X, activation="softmax")
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        P.train(hebb, W0, X, epochs=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):  # the wrong type is a TypeError
        P.train(hebb, W0, X, batch_size=1.5)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\)"):
        P.train(hebb, W0, np.ones((4, 3)))
    with pytest.raises(TypeError, match="works on spikes"):
        P.train(P.STDP(), W0, X)
    with pytest.raises(TypeError, match="rule must be a plasticity rule"):
        P.train("oja", W0, X)
    with pytest.raises(TypeError, match="seed must be"):
        P.train(hebb, W0, X, seed=1.5)


def test_train_rejects_a_nan_sample_or_warns_by_option():
    from neuro.validation import NonFiniteWarning

    X = np.random.default_rng(0).standard_normal((50, 4))
    X[3, 1] = np.nan
    W = np.full((1, 4), 0.1)
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        P.train(P.Oja(), W, X)
    with pytest.raises(ValueError, match="W contains 1 NaN"):
        P.train(P.Oja(), np.array([[np.nan, 0.1, 0.1, 0.1]]), np.ones((5, 4)))
    with pytest.warns(NonFiniteWarning, match="X contains"):
        result = P.train(P.Oja(), W, X, on_nonfinite="warn", seed=0)
    assert np.isnan(result.weights).all()  # what the warning announced
    with pytest.raises(ValueError, match="on_nonfinite"):
        P.train(P.Oja(), W, X, on_nonfinite="ignore")
