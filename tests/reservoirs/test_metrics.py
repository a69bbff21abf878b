"""Metrics against scikit-learn / NumPy formulas and reservoir theory."""

import numpy as np
import pytest
import scipy.linalg
import sklearn.metrics

from reservoirs import ESN, UnstableReservoirWarning, metrics, weights


def test_nrmse_and_rsquare_formulas():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((200, 2)) * [1.0, 3.0] + 5
    p = y + 0.3 * rng.standard_normal((200, 2))
    rmse = np.sqrt(np.mean((y - p) ** 2))
    assert metrics.nrmse(y, p) == pytest.approx(rmse / y.std())
    assert metrics.nrmse(y, p, norm="range") == pytest.approx(rmse / np.ptp(y))
    assert metrics.nrmse(y, p, norm="mean") == pytest.approx(rmse / y.mean())
    np.testing.assert_allclose(
        metrics.nrmse(y, p, dimensionwise=True), np.sqrt(np.mean((y - p) ** 2, axis=0)) / y.std(axis=0)
    )
    assert metrics.rsquare(y, p) == pytest.approx(sklearn.metrics.r2_score(y, p))
    assert metrics.rsquare(y[:, 0], p[:, 0]) == pytest.approx(sklearn.metrics.r2_score(y[:, 0], p[:, 0]))
    with pytest.raises(ValueError, match="same shape"):
        metrics.nrmse(y, p[:-1])
    with pytest.raises(ValueError, match="norm"):
        metrics.nrmse(y, p, norm="q1q3")


def _linear_orthogonal(n, radius, input_scale, activation="identity", seed=0):
    W = weights.orthogonal_matrix(n, spectral_radius=radius, seed=seed)
    W_in = np.random.default_rng(seed + 1).uniform(-1, 1, (n, 1)) * input_scale
    return ESN.from_weights(W, W_in, activation=activation)


def test_memory_capacity_of_linear_orthogonal_esn_is_close_to_n():
    n = 40
    mc = metrics.memory_capacity(_linear_orthogonal(n, 0.9, 0.1), 2 * n, n_steps=5000, seed=2)
    assert 0.9 * n < mc <= n + 0.5  # theory: MC <= N, approached by linear networks with orthogonal W
    per = metrics.memory_capacity(_linear_orthogonal(n, 0.9, 0.1), 2 * n, n_steps=5000, seed=2, per_delay=True)
    assert per.shape == (2 * n,) and per.sum() == pytest.approx(mc)
    assert per[0] > 0.99 and per[-1] < 0.1  # recent inputs are recalled, the distant past is not


def test_memory_capacity_falls_with_nonlinearity():
    n = 40
    mcs = [
        metrics.memory_capacity(_linear_orthogonal(n, 0.9, scale, activation="tanh"), 2 * n, n_steps=4000, seed=3)
        for scale in (0.01, 0.5, 2.0)
    ]
    # small inputs keep tanh in its linear range; saturating ones destroy memory
    assert mcs[0] > 0.85 * n and mcs[0] > mcs[1] > mcs[2]


def test_separation_grows_with_input_distance():
    esn = ESN(100, spectral_radius=0.9, input_scaling=0.5, seed=4)
    rng = np.random.default_rng(5)
    base = rng.uniform(-1, 1, (200, 1))
    noise = rng.standard_normal((200, 1))
    late = [metrics.separation(esn, base, base + d * noise)[100:].mean() for d in (0.0, 0.01, 0.1, 0.5)]
    assert late[0] == 0.0
    assert late[1] < late[2] < late[3]


def test_kernel_quality_exceeds_generalization_rank():
    esn = ESN(60, spectral_radius=0.9, input_scaling=1.0, seed=6)
    rng = np.random.default_rng(7)
    different = rng.uniform(-1, 1, (40, 50, 1))
    kq = metrics.kernel_quality(esn, different, rtol=1e-3)
    gr = metrics.generalization_rank(esn, different[0], 40, noise=0.001, rtol=1e-3, seed=8)
    assert kq > 30 and gr < 10


def test_spectral_radius_and_echo_state_checks():
    rng = np.random.default_rng(9)
    W = weights.random_sparse(300, connectivity=0.05, spectral_radius=0.8, seed=10)
    dense_sr = np.max(np.abs(scipy.linalg.eigvals(W.toarray())))
    assert weights.spectral_radius(W) == pytest.approx(0.8, rel=1e-8)
    assert dense_sr == pytest.approx(0.8, rel=1e-8)
    eff = metrics.effective_spectral_radius(W, 0.3)
    M = 0.7 * np.eye(300) + 0.3 * W.toarray()
    assert eff == pytest.approx(np.max(np.abs(scipy.linalg.eigvals(M))), rel=1e-8)
    assert metrics.esp_sufficient(W * 0.1) and not metrics.esp_sufficient(W * 5)
    u = rng.uniform(-1, 1, (300, 1))
    stable = ESN.from_weights(W, rng.uniform(-1, 1, (300, 1)))
    dist = metrics.echo_state_check(stable, u, n_trials=4, seed=11)
    assert dist.shape == (300,) and dist[0] > 1.0 and dist[-1] < 1e-6  # initial conditions are forgotten
    with pytest.warns(UnstableReservoirWarning):
        unstable = ESN.from_weights(W * 4.0, rng.uniform(-1, 1, (300, 1)) * 0.01)
    assert metrics.echo_state_check(unstable, u * 0.01, n_trials=4, seed=11)[-1] > 0.1


def test_state_array_metrics_equal_the_esn_forms_on_esn_states():
    from reservoirs.metrics import (
        generalization_rank,
        kernel_quality,
        memory_capacity,
        memory_capacity_of_states,
        rank_of_states,
        separation,
        separation_of_states,
    )
    from reservoirs.tasks import delayed_recall

    esn = ESN(40, spectral_radius=0.9, seed=21, input_dim=1)
    rng = np.random.default_rng(22)
    u_a, u_b = rng.uniform(-1, 1, (60, 1)), rng.uniform(-1, 1, (60, 1))
    np.testing.assert_array_equal(separation_of_states(esn.run(u_a), esn.run(u_b)), separation(esn, u_a, u_b))
    inputs = rng.uniform(-1, 1, (12, 30, 1))
    assert rank_of_states(esn.run(inputs)) == kernel_quality(esn, inputs)
    assert rank_of_states(esn.run(inputs)[:, -1]) == kernel_quality(esn, inputs)
    u, _ = delayed_recall(2000, 15, seed=3)
    assert memory_capacity_of_states(esn.run(u), u, 15) == memory_capacity(esn, 15, n_steps=2000, seed=3)
    assert generalization_rank(esn, u_a, 8, 0.0) == 1  # identical copies span one direction


def test_state_array_metrics_behave_as_theory_on_constructed_states():
    from reservoirs.metrics import memory_capacity_of_states, rank_of_states, separation_of_states

    rng = np.random.default_rng(23)
    x = rng.standard_normal((5, 50, 8))  # e.g. LSM traces (B, T, N)
    np.testing.assert_array_equal(separation_of_states(x, x), np.zeros((5, 50)))
    np.testing.assert_allclose(separation_of_states(x[0], x[0] + 3.0 / np.sqrt(8)), np.full(50, 3.0))
    basis = rng.standard_normal((3, 8))
    low_rank = rng.standard_normal((20, 3)) @ basis  # 20 state vectors in a 3-D subspace
    assert rank_of_states(low_rank) == 3
    assert rank_of_states(rng.standard_normal((20, 8))) == 8
    # a perfect delay line (state k holds u(t - k)) remembers each delay exactly: MC = number of delays held
    u = rng.uniform(-1, 1, 3000)
    line = np.stack([np.roll(u, k) for k in range(1, 6)], axis=1)
    assert memory_capacity_of_states(line, u, 8) == pytest.approx(5.0, abs=0.02)
    with pytest.raises(ValueError, match="same shape"):
        separation_of_states(x, x[:, :10])
    with pytest.raises(ValueError, match="one input feature"):
        memory_capacity_of_states(line, u[:100], 5)


@pytest.mark.parametrize("W", [np.ones((2, 3)), np.ones(4), np.ones((2, 2, 2))])
def test_esp_sufficient_needs_a_square_matrix(W):
    with pytest.raises(ValueError, match="square"):
        metrics.esp_sufficient(W)
    import scipy.sparse
    if W.ndim == 2:
        with pytest.raises(ValueError, match="square"):
            metrics.esp_sufficient(scipy.sparse.csr_matrix(W))
