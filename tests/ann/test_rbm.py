"""Restricted Boltzmann machines against enumeration and integration: free energy, log Z, Gibbs, CD-k and PCD."""

import itertools

import numpy as np
import pytest
import scipy.integrate
import scipy.special

from ann.energy import RBM
from ann.energy.rbm import binary_states
from neuro.backend import make_rng


def _random_rbm(n_visible, n_hidden, scale=1.0, seed=0, **kw):
    rbm = RBM(n_visible, n_hidden, seed=seed, **kw)
    r = np.random.default_rng(seed + 100)
    rbm.W[...] = r.normal(0, scale, rbm.W.shape)
    rbm.b[...] = r.normal(0, scale, rbm.b.shape)
    rbm.c[...] = r.normal(0, scale, rbm.c.shape)
    return rbm


def _all_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_equals_minus_log_sum_over_hidden_states(visible):
    rbm = _random_rbm(5, 4, scale=1.5, visible=visible, sigma=np.array([0.5, 1.0, 2.0, 1.0, 0.7]))
    r = np.random.default_rng(1)
    v = (r.random((6, 5)) < 0.5).astype(float) if visible == "bernoulli" else r.normal(0, 2, (6, 5))
    hs = _all_states(4)
    for row in v:
        energies = rbm.energy(np.repeat(row[None], len(hs), 0), hs)
        np.testing.assert_allclose(rbm.free_energy(row)[0], -scipy.special.logsumexp(-energies), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (3, 6)])  # enumerates the hidden layer, then the visible one
def test_log_partition_and_likelihood_equal_brute_force(shape):
    n_v, n_h = shape
    rbm = _random_rbm(n_v, n_h, scale=1.2)
    vs, hs = _all_states(n_v), _all_states(n_h)
    pairs_v = np.repeat(vs, len(hs), 0)
    pairs_h = np.tile(hs, (len(vs), 1))
    log_z = scipy.special.logsumexp(-rbm.energy(pairs_v, pairs_h))
    np.testing.assert_allclose(rbm.log_partition(), log_z, rtol=1e-12)
    ll = rbm.log_likelihood(vs)
    np.testing.assert_allclose(scipy.special.logsumexp(ll), 0.0, atol=1e-12)  # a normalized distribution


def test_log_partition_of_gaussian_units_equals_numerical_integral():
    rbm = _random_rbm(1, 3, scale=0.8, visible="gaussian", sigma=0.6)
    integral, _ = scipy.integrate.quad(lambda x: np.exp(-rbm.free_energy(np.array([x]))[0]), -30, 30, limit=200)
    np.testing.assert_allclose(rbm.log_partition(), np.log(integral), rtol=1e-9)


def test_log_partition_does_not_overflow_and_enumerates_at_most_20_units():
    rbm = _random_rbm(12, 20, scale=300.0)  # enumerates 2**12 visible states; energies ~ 1e4
    vs = binary_states(12)
    expected = scipy.special.logsumexp(-rbm.free_energy(vs))
    assert np.isfinite(expected) and abs(expected) > 1e3
    np.testing.assert_allclose(rbm.log_partition(), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="at most 20 units"):
        RBM(21, 22).log_partition()
    with pytest.raises(ValueError, match="at most 20 units"):
        RBM(5, 21, visible="gaussian").log_partition()


def _toy_data(seed=0, n=60):
    """Binary 12-pixel data: three prototypes with 10% of their pixels flipped."""
    r = np.random.default_rng(seed)
    protos = (r.random((3, 12)) < 0.5).astype(float)
    x = protos[r.integers(0, 3, n)]
    flip = r.random(x.shape) < 0.1
    return np.where(flip, 1 - x, x)


@pytest.mark.parametrize("persistent", [False, True], ids=["CD-1", "PCD"])
def test_exact_log_likelihood_rises_under_training(persistent):
    data = _toy_data()
    rbm = RBM(12, 8, seed=0)
    curve = [float(rbm.log_likelihood(data).mean())]
    hist = rbm.fit(data, epochs=30, batch_size=10, lr=0.05, k=1, persistent=persistent, momentum=0.5, seed=1,
                   callback=lambda m, epoch: float(m.log_likelihood(data).mean()))
    curve += hist["callback"]
    assert len(hist["reconstruction_error"]) == 30
    assert curve[-1] > curve[0] + 2.0, curve  # from 12 log 2 = -8.3 nats towards the data's entropy
    assert np.mean(curve[-5:]) > np.mean(curve[5:10])
    assert hist["reconstruction_error"][-1] < hist["reconstruction_error"][0]
    assert (rbm.chains is not None) == persistent


def test_gibbs_samples_match_the_exact_distribution():
    rbm = _random_rbm(4, 3, scale=1.0, seed=3)
    vs = binary_states(4)
    p_exact = np.exp(rbm.log_likelihood(vs))
    samples = rbm.sample(20000, steps=50, seed=0)
    codes = (samples @ (1 << np.arange(4))).astype(int)  # bit i of the code is unit i, as binary_states
    p_emp = np.bincount(codes, minlength=16) / len(codes)
    tv = 0.5 * np.abs(p_emp - p_exact).sum()
    assert tv < 0.05, tv
    # the same check from the data side: one Gibbs step from the exact distribution stays there
    v0 = vs[make_rng(1).choice(16, size=20000, p=p_exact)]
    p_step = np.bincount((rbm.gibbs(v0, k=1, seed=2) @ (1 << np.arange(4))).astype(int), minlength=16) / 20000
    assert 0.5 * np.abs(p_step - p_exact).sum() < 0.05


def test_gaussian_gibbs_samples_match_the_exact_moments():
    rbm = _random_rbm(1, 2, scale=0.8, visible="gaussian", sigma=0.7, seed=4)
    density = lambda x, power: x**power * np.exp(rbm.log_likelihood(np.array([x]))[0])  # noqa: E731
    mean = scipy.integrate.quad(density, -30, 30, args=(1,), limit=200)[0]
    var = scipy.integrate.quad(density, -30, 30, args=(2,), limit=200)[0] - mean**2
    s = rbm.sample(20000, steps=30, seed=0)[:, 0]
    assert abs(s.mean() - mean) < 0.03 and abs(s.var() / var - 1) < 0.05


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_contrastive_divergence_update_by_hand(visible):
    """Two CD-2 steps with momentum and weight decay equal the update written out with the same random draws."""
    rbm = _random_rbm(5, 3, scale=0.5, visible=visible, sigma=0.8, seed=5)
    W, b, c, sig = rbm.W.copy(), rbm.b.copy(), rbm.c.copy(), 0.8
    r = np.random.default_rng(6)
    batches = [(r.random((4, 5)) < 0.5).astype(float) for _ in range(2)]
    lr, mom, wd, k = 0.1, 0.9, 0.01, 2
    for i, v in enumerate(batches):
        rbm.contrastive_divergence(v, lr=lr, k=k, momentum=mom, weight_decay=wd, seed=10 + i)
    # by hand
    sigm = scipy.special.expit
    vel = [0 * W, 0 * b, 0 * c]
    scale = sig if visible == "gaussian" else 1.0
    for i, v in enumerate(batches):
        rng = np.random.default_rng(10 + i)
        ph0 = sigm(v / scale @ W.T + c)
        vk = v
        for _ in range(k):
            h = (rng.random((4, 3)) < sigm(vk / scale @ W.T + c)).astype(float)
            if visible == "gaussian":
                vk = b + sig * (h @ W) + sig * rng.standard_normal((4, 5))
            else:
                vk = (rng.random((4, 5)) < sigm(h @ W + b)).astype(float)
        phk = sigm(vk / scale @ W.T + c)
        gW = (ph0.T @ (v / scale) - phk.T @ (vk / scale)) / 4 - wd * W
        gb = ((v - b).mean(0) - (vk - b).mean(0)) / sig**2 if visible == "gaussian" else v.mean(0) - vk.mean(0)
        gc = ph0.mean(0) - phk.mean(0)
        vel = [mom * u + lr * g for u, g in zip(vel, (gW, gb, gc))]
        W, b, c = W + vel[0], b + vel[1], c + vel[2]
    np.testing.assert_allclose(rbm.W, W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rbm.b, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rbm.c, c, rtol=1e-12, atol=1e-14)


def test_pseudo_log_likelihood_equals_conditionals_by_enumeration():
    rbm = _random_rbm(5, 3, scale=1.0)
    vs = binary_states(5)
    p = np.exp(rbm.log_likelihood(vs))
    v = vs[[3, 17, 30]]
    expected = np.zeros(3)
    for n, row in enumerate(v):
        for i in range(5):
            other = row.copy()
            other[i] = 1 - other[i]
            idx = lambda x: int(x @ (1 << np.arange(5)))  # noqa: E731
            expected[n] += np.log(p[idx(row)] / (p[idx(row)] + p[idx(other)]))
    np.testing.assert_allclose(rbm.pseudo_log_likelihood(v), expected, rtol=1e-12)


def test_reconstruction_and_seeds_are_reproducible():
    data = _toy_data(n=20)
    a, b = RBM(12, 8, seed=0), RBM(12, 8, seed=0)
    a.fit(data, epochs=2, seed=3)
    b.fit(data, epochs=2, seed=3)
    np.testing.assert_array_equal(a.W, b.W)
    rec = a.reconstruct(data)
    assert rec.shape == data.shape and np.all((rec > 0) & (rec < 1))
    np.testing.assert_allclose(a.reconstruction_error(data), ((data - rec) ** 2).mean())
    np.testing.assert_array_equal(a.gibbs(data, k=3, seed=1), b.gibbs(data, k=3, seed=1))
    assert "n_visible=12" in repr(a)


def test_rbm_bad_input_errors():
    rbm = RBM(4, 3, seed=0)
    v = np.array([[0, 1, 0, 1.0]])
    with pytest.raises(ValueError, match=r"v must be binary \(0 or 1\)"):
        rbm.free_energy(np.array([[0.5, 1, 0, 1]]))
    with pytest.raises(ValueError, match="data must be binary"):
        rbm.fit(np.full((3, 4), 0.3))
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        rbm.contrastive_divergence(v, k=0)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        rbm.gibbs(v, k=0)
    with pytest.raises(ValueError, match=r"v must have shape \(B, 4\)"):
        rbm.hidden_probs(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"h must have shape \(B, 3\)"):
        rbm.visible_mean(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="same batch size"):
        rbm.energy(np.zeros((2, 4)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="lr"):
        rbm.contrastive_divergence(v, lr=0)
    with pytest.raises(ValueError, match="momentum"):
        rbm.contrastive_divergence(v, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        rbm.contrastive_divergence(v, weight_decay=-1.0)
    with pytest.raises(ValueError, match="visible must be"):
        RBM(4, 3, visible="binary")
    with pytest.raises(ValueError, match="sigma"):
        RBM(4, 3, visible="gaussian", sigma=[1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="n_hidden"):
        RBM(4, 0)
    with pytest.raises(ValueError, match="pseudo_log_likelihood needs Bernoulli"):
        RBM(4, 3, visible="gaussian").pseudo_log_likelihood(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="v must be finite"):
        RBM(2, 3, visible="gaussian").free_energy(np.array([[np.nan, 0.0]]))


def test_diverging_training_warns():
    import ann

    rbm = RBM(4, 3, visible="gaussian", sigma=0.1, seed=0)
    x = np.random.default_rng(0).normal(0, 5, (20, 4))
    with np.errstate(all="ignore"), pytest.warns(ann.NonFiniteLossWarning, match="diverged"):
        rbm.fit(x, epochs=40, lr=1e3, momentum=0.9, seed=0)
