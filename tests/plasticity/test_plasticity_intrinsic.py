"""Intrinsic plasticity: the update is the KL gradient (finite differences) and it moves outputs toward the target."""

import numpy as np
import pytest

import plasticity as P


def per_sample_loss(ip, a, b, x):
    """l(a, b) = -log a - log f'(a x + b) - log p_target(y), averaged over samples (KL up to a constant)."""
    u = a * x + b
    if ip.activation == "tanh":
        y = np.tanh(u)
        return np.mean(-np.log(a) - np.log(1 - y**2) + (y - ip.mu) ** 2 / (2 * ip.sigma**2), axis=0)
    y = 1 / (1 + np.exp(-u))
    return np.mean(-np.log(a) - np.log(y * (1 - y)) + y / ip.mu, axis=0)


@pytest.mark.parametrize("ip", [P.IntrinsicPlasticity(lr=0.01, activation="tanh", mu=0.1, sigma=0.3),
                                P.IntrinsicPlasticity(lr=0.01, activation="sigmoid", mu=0.2)],
                         ids=["tanh-gauss", "sigmoid-exp"])
def test_update_is_minus_lr_times_finite_difference_gradient(ip):
    rng = np.random.default_rng(0)
    n = 3
    x = rng.standard_normal((8, n))
    state = ip.init_state(n)
    state["gain"][:] = [0.8, 1.3, 2.0]
    state["bias"][:] = [0.1, -0.4, 0.3]
    d = ip.delta(x, state)
    a, b, h = state["gain"].copy(), state["bias"].copy(), 1e-6
    ga = (per_sample_loss(ip, a + h, b, x) - per_sample_loss(ip, a - h, b, x)) / (2 * h)
    gb = (per_sample_loss(ip, a, b + h, x) - per_sample_loss(ip, a, b - h, x)) / (2 * h)
    np.testing.assert_allclose(d["gain"], -ip.lr * ga, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(d["bias"], -ip.lr * gb, rtol=1e-6, atol=1e-10)
    # batch averaging
    singles = [ip.delta(x[k], state) for k in range(8)]
    np.testing.assert_allclose(d["bias"], np.mean([s["bias"] for s in singles], axis=0))


def esn_net_inputs(rng, n=30, T=3000, rho=0.9):
    """Net inputs of the units of a small random tanh echo-state network driven by white noise: (T, n)."""
    Wr = rng.standard_normal((n, n))
    Wr *= rho / np.max(np.abs(np.linalg.eigvals(Wr)))
    w_in = rng.uniform(-1, 1, size=n)
    u = rng.uniform(-1, 1, size=T)
    x, nets = np.zeros(n), np.empty((T, n))
    for t in range(T):
        nets[t] = Wr @ x + w_in * u[t]
        x = np.tanh(nets[t])
    return nets


@pytest.mark.parametrize("activation,kw", [("tanh", dict(mu=0.0, sigma=0.2)), ("sigmoid", dict(mu=0.2))])
def test_ip_moves_esn_unit_outputs_toward_target(activation, kw):
    rng = np.random.default_rng(1)
    nets = esn_net_inputs(rng)
    ip = P.IntrinsicPlasticity(lr=0.01, activation=activation, **kw)
    state = ip.init_state(nets.shape[1])
    before = ip.activate(nets, state)
    for _ in range(5):
        for t in range(0, len(nets), 10):
            ip.step(nets[t:t + 10], state)  # mini-batches of 10 time steps
    after = ip.activate(nets, state)
    kl_before = np.array([P.kl_to_target(before[:, i], ip) for i in range(nets.shape[1])])
    kl_after = np.array([P.kl_to_target(after[:, i], ip) for i in range(nets.shape[1])])
    assert np.mean(kl_after) < 0.5 * np.mean(kl_before), (kl_before.mean(), kl_after.mean())
    assert np.mean(kl_after < kl_before) > 0.9
    # the moments move toward the target's
    if activation == "tanh":
        assert abs(after.std() - 0.2) < abs(before.std() - 0.2)
    else:
        assert abs(after.mean() - 0.2) < 0.05 < abs(before.mean() - 0.2)


def test_step_returns_outputs_before_update_and_validates():
    ip = P.IntrinsicPlasticity()
    state = ip.init_state(2, gain0=2.0, bias0=0.5)
    x = np.array([[0.3, -0.2]])
    y = ip.step(x, state)
    np.testing.assert_allclose(y, np.tanh(2.0 * x + 0.5))
    assert not np.allclose(state["gain"], 2.0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        ip.delta(np.zeros((1, 3)), state)
    with pytest.raises(ValueError, match="needs its state"):
        ip.delta(x, None)
    with pytest.raises(ValueError, match="n must be a positive int"):
        ip.init_state(0)
    with pytest.raises(ValueError, match="gain0 must be > 0"):
        ip.init_state(2, gain0=0.0)
    with pytest.raises(ValueError, match="bins"):
        P.kl_to_target(y, ip, bins=1)


def test_kl_to_target_is_small_for_target_samples():
    rng = np.random.default_rng(2)
    ip = P.IntrinsicPlasticity(activation="tanh", mu=0.1, sigma=0.2)
    good = rng.normal(0.1, 0.2, size=20000)
    bad = rng.uniform(-1, 1, size=20000)
    assert P.kl_to_target(good, ip) < 0.01 < P.kl_to_target(bad, ip)
