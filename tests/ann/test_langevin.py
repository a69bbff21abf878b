"""Langevin sampling recovers a known Gaussian; contrastive-divergence training with a replay buffer learns one."""

import numpy as np
import pytest

from ann import nn, optim
from ann.energy import EBMTrainer, ReplayBuffer, langevin_sample

MEAN = np.array([1.0, -1.0])
COV = np.array([[1.0, 0.6], [0.6, 0.5]])
PREC = np.linalg.inv(COV)


def gaussian_energy(x):
    """``E(x) = (x - m)^T P (x - m) / 2`` for a Tensor ``(B, 2)``: the density N(m, P^-1)."""
    d = x - MEAN
    return 0.5 * ((d @ PREC) * d).sum(axis=1)


class Quadratic(nn.Module):
    """A learnable Gaussian energy ``|(x - mu) L|^2 / 2`` (precision ``L L^T``), starting at N(0, I)."""

    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(np.zeros(2))
        self.L = nn.Parameter(np.eye(2))

    def forward(self, x):
        z = (x - self.mu) @ self.L
        return 0.5 * (z * z).sum(axis=1)

    def covariance(self):
        return np.linalg.inv(self.L.data @ self.L.data.T)


def test_langevin_recovers_mean_and_covariance_of_a_2d_gaussian():
    x0 = np.random.default_rng(0).standard_normal((2000, 2))
    x = langevin_sample(gaussian_energy, x0, steps=1500, step_size=0.01, seed=1)
    # the unadjusted algorithm's bias at this step size is about step_size * lambda_max(P) / 2 ~ 3%
    np.testing.assert_allclose(x.mean(axis=0), MEAN, atol=0.06)
    np.testing.assert_allclose(np.cov(x.T), COV, atol=0.06)
    assert x.shape == x0.shape and x.dtype == x0.dtype
    np.testing.assert_array_equal(x, langevin_sample(gaussian_energy, x0, steps=1500, step_size=0.01, seed=1))


def test_langevin_with_a_module_freezes_its_parameters_and_restores_them():
    q = Quadratic()
    x = langevin_sample(q, np.ones((4, 2)), steps=3, seed=0)
    assert x.shape == (4, 2)
    assert all(p.requires_grad and p.grad is None for p in q.parameters())


def test_noise_free_langevin_is_clipped_gradient_descent():
    x0 = np.array([[5.0, 5.0], [0.0, 0.0]])
    x = langevin_sample(gaussian_energy, x0, steps=2000, step_size=0.05, noise_scale=0.0)
    np.testing.assert_allclose(x, np.tile(MEAN, (2, 1)), atol=1e-6)  # descends to the minimum
    one = langevin_sample(gaussian_energy, x0, steps=1, step_size=0.5, noise_scale=0.0, grad_clip=0.1)
    g = (x0 - MEAN) @ PREC
    np.testing.assert_allclose(one, x0 - 0.5 * np.clip(g, -0.1, 0.1))
    clamped = langevin_sample(gaussian_energy, x0, steps=50, step_size=0.05, clamp=(0.0, 2.0), seed=0)
    assert clamped.min() >= 0.0 and clamped.max() <= 2.0


def test_ebm_trainer_with_replay_buffer_learns_a_gaussian():
    q = Quadratic()
    buffer = ReplayBuffer(2048, (2,), reinit_prob=0.05, init_range=(-3, 3), dtype=np.float64, seed=0)
    trainer = EBMTrainer(q, optim.Adam(q.parameters(), lr=0.01), buffer, steps=30, step_size=0.01,
                         noise_scale=None, grad_clip=None, alpha=0.0, seed=2)
    rng = np.random.default_rng(3)
    for _ in range(600):
        out = trainer.step(rng.multivariate_normal(MEAN, COV, 256))
    assert len(buffer) == 2048 and set(out) == {"loss", "energy_data", "energy_samples"}
    np.testing.assert_allclose(q.mu.data, MEAN, atol=0.1)
    assert np.linalg.norm(q.covariance() - COV) / np.linalg.norm(COV) < 0.15  # 0.72 at the start


def test_replay_buffer_is_fifo_and_mixes_in_noise():
    buf = ReplayBuffer(5, (1,), reinit_prob=0.5, init_range=(10, 11), seed=0)
    assert np.all(buf.sample(3) >= 10)  # empty: noise only
    buf.push(np.arange(7.0).reshape(7, 1))
    np.testing.assert_array_equal(buf.data[:, 0], [2, 3, 4, 5, 6])  # the newest 5
    s = buf.sample(400)[:, 0]
    fresh = s >= 10
    assert 0.4 < fresh.mean() < 0.6 and set(s[~fresh]) <= {2.0, 3.0, 4.0, 5.0, 6.0}


def test_langevin_bad_input():
    x0 = np.zeros((3, 2))
    with pytest.raises(ValueError, match="non-finite"):
        langevin_sample(lambda x: x.sum(axis=1) + np.inf, x0, steps=1)
    with pytest.raises(ValueError, match=r"one energy per sample, shape \(3,\)"):
        langevin_sample(lambda x: x.sum(), x0, steps=1)
    with pytest.raises(TypeError, match="ann.Tensor"):
        langevin_sample(lambda x: 1.0, x0, steps=1)
    with pytest.raises(TypeError, match="energy must be"):
        langevin_sample("quadratic", x0)
    with pytest.raises(ValueError, match="steps"):
        langevin_sample(gaussian_energy, x0, steps=0)
    with pytest.raises(ValueError, match="step_size"):
        langevin_sample(gaussian_energy, x0, step_size=-1.0)
    with pytest.raises(ValueError, match="grad_clip"):
        langevin_sample(gaussian_energy, x0, grad_clip=0.0)
    with pytest.raises(ValueError, match="clamp"):
        langevin_sample(gaussian_energy, x0, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="x0 must be a floating array"):
        langevin_sample(gaussian_energy, np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match="x0 must be finite"):
        langevin_sample(gaussian_energy, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        ReplayBuffer(4, (2,)).push(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="model must be an ann Module"):
        EBMTrainer(gaussian_energy, None, ReplayBuffer(4, (2,)))


def test_langevin_on_an_mlp_energy_equals_pytorch():
    """The same chain written in PyTorch (same weights, same noise draws) lands on the same points."""
    import torch

    model = nn.MLP([2, 16, 1], activation="tanh", dtype=np.float64, seed=0)
    sd = {k: torch.tensor(v) for k, v in model.state_dict().items()}
    x0 = np.random.default_rng(1).standard_normal((5, 2))
    ours = langevin_sample(model, x0, steps=25, step_size=0.05, noise_scale=0.1, grad_clip=0.5, seed=2)
    rng = np.random.default_rng(2)
    x = torch.tensor(x0)
    for _ in range(25):
        x.requires_grad_(True)
        e = (torch.tanh(x @ sd["0.weight"].T + sd["0.bias"]) @ sd["2.weight"].T + sd["2.bias"])[:, 0]
        (g,) = torch.autograd.grad(e.sum(), x)
        x = (x - 0.05 * g.clamp(-0.5, 0.5) + 0.1 * torch.tensor(rng.standard_normal(x.shape))).detach()
    np.testing.assert_allclose(ours, x.numpy(), rtol=1e-12, atol=1e-12)
