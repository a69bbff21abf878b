"""Energy-based losses (LeCun et al. 2006) against straightforward PyTorch formulas: values, gradients, ties, 1e4."""

import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from sklearn.datasets import load_digits

import ann
import ann.functional as F
from ann import energy, losses, nn, optim
from ann.train import DataLoader, train_val_test_split

TOL = {np.float32: dict(rtol=2e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}


# ---- the formulas, written directly in PyTorch (E: (N, C) energies, t: (N,) classes)
def _t_correct(E, t):
    return E.gather(1, t[:, None])[:, 0]


def _t_bar(E, t):  # lowest energy among the incorrect answers; ties share the gradient (amin)
    return E.masked_fill(TF.one_hot(t, E.shape[1]).bool(), float("inf")).amin(dim=1)


REFERENCE = {
    "energy_loss": lambda E, t: _t_correct(E, t),
    "energy_perceptron_loss": lambda E, t: _t_correct(E, t) - E.amin(dim=1),
    "energy_hinge_loss": lambda E, t, margin=1.0: torch.relu(margin + _t_correct(E, t) - _t_bar(E, t)),
    "energy_log_loss": lambda E, t: TF.softplus(_t_correct(E, t) - _t_bar(E, t)),
    "energy_square_square_loss": lambda E, t, margin=1.0: _t_correct(E, t) ** 2 + torch.relu(margin - _t_bar(E, t)) ** 2,
    "energy_square_exp_loss": lambda E, t, gamma=1.0: _t_correct(E, t) ** 2 + gamma * torch.exp(-_t_bar(E, t)),
    "energy_nll_loss": lambda E, t, beta=1.0: _t_correct(E, t) + torch.logsumexp(-beta * E, dim=1) / beta,
}
PARAMS = {"energy_hinge_loss": {"margin": 0.7}, "energy_square_square_loss": {"margin": 2.0},
          "energy_square_exp_loss": {"gamma": 0.5}, "energy_nll_loss": {"beta": 0.3}}
MODULES = {"energy_loss": energy.EnergyLoss, "energy_perceptron_loss": energy.EnergyPerceptronLoss,
           "energy_hinge_loss": energy.EnergyHingeLoss, "energy_log_loss": energy.EnergyLogLoss,
           "energy_square_square_loss": energy.EnergySquareSquareLoss,
           "energy_square_exp_loss": energy.EnergySquareExpLoss, "energy_nll_loss": energy.EnergyNLLLoss}


def _energies(kind, name):
    r = np.random.default_rng(zlib.crc32(f"{kind}-{name}".encode()))
    if kind == "random":
        E = r.standard_normal((7, 5)) * 2
    elif kind == "ties":  # small integers: many exact ties, the correct answer tied with others, hinge kinks
        E = r.integers(-2, 3, (12, 4)).astype(float)
        E[0] = 1.0  # every answer tied
    else:  # "huge": magnitudes 1e4
        E = r.choice([-1e4, 1e4, 5e3, 0.0, 1.0], size=(8, 4)) + r.standard_normal((8, 4))
    if name in ("energy_square_exp_loss", "energy_square_square_loss"):
        E = np.abs(E)  # these losses are meant for energies >= 0 (exp(-E_bar) overflows for E_bar << 0)
    t = r.integers(0, E.shape[1], E.shape[0])
    return E, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["random", "ties", "huge"])
@pytest.mark.parametrize("name", list(REFERENCE))
def test_energy_loss_matches_torch_formula(name, kind, reduction, dtype):
    E, t = _energies(kind, name)
    E = E.astype(dtype)
    kw = PARAMS.get(name, {})
    tol = dict(TOL[dtype])
    if dtype == np.float32 and kind == "huge":  # E_y - (...) cancels: both sides round at eps * |E| ~ 1e-3
        tol["atol"] = 8 * np.finfo(np.float32).eps * np.abs(E).max()
    x = ann.Tensor(E, requires_grad=True)
    y = getattr(F, name)(x, t, reduction=reduction, **kw)
    xt = torch.tensor(E, requires_grad=True)
    per = REFERENCE[name](xt, torch.tensor(t), **kw)
    yt = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    assert np.isfinite(y.numpy()).all()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **tol)
    g = np.random.default_rng(1).uniform(0.5, 1.5, y.shape).astype(dtype)
    y.backward(g)
    yt.backward(torch.tensor(g))
    assert np.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), **tol)
    # the Module form gives the same value
    m = MODULES[name](**kw, reduction=reduction)
    np.testing.assert_array_equal(m(ann.Tensor(E), t).numpy(), y.numpy())


def test_energy_losses_reachable_everywhere_and_closed_forms():
    for name in REFERENCE:
        assert getattr(F, name) is getattr(losses, name) is getattr(energy, name)
        assert name in F.__all__ and name in losses.__all__ and MODULES[name].__name__ in energy.__all__
    E = np.array([[0.0, 2.0, 3.0], [1.0, 1.0, 5.0]])
    t = np.array([0, 0])
    # hinge: max(0, 1 + E_y - E_bar) = [0, 1]; perceptron: E_y - min E = [0, 0]
    np.testing.assert_allclose(F.energy_hinge_loss(E, t, reduction="none").numpy(), [0.0, 1.0])
    np.testing.assert_allclose(F.energy_perceptron_loss(E, t, reduction="none").numpy(), [0.0, 0.0])
    # NLL at beta = 1 is the cross-entropy of the negated energies
    np.testing.assert_allclose(F.energy_nll_loss(E, t).numpy(), F.cross_entropy(ann.Tensor(-E), t).numpy(), rtol=1e-12)
    # as beta grows the NLL loss tends to the perceptron loss (LeCun et al. 2006: the zero-temperature limit)
    R = np.random.default_rng(0).standard_normal((5, 4))
    tr = np.array([0, 1, 2, 3, 0])
    np.testing.assert_allclose(F.energy_nll_loss(R, tr, beta=1e4, reduction="none").numpy(),
                               F.energy_perceptron_loss(R, tr, reduction="none").numpy(), atol=1e-3)
    assert "margin=0.5" in repr(energy.EnergyHingeLoss(margin=0.5))


@pytest.mark.parametrize("name", list(REFERENCE))
def test_energy_losses_gradcheck(name):
    r = np.random.default_rng(3)
    E = r.uniform(0.1, 3.0, (4, 5))  # distinct values, away from kinks
    t = np.array([0, 3, 1, 4])
    assert ann.gradcheck(lambda x: getattr(F, name)(x, t, reduction="sum", **PARAMS.get(name, {})),
                         [ann.Tensor(E, requires_grad=True)])


def test_energy_losses_bad_input():
    E = ann.Tensor(np.zeros((3, 4)))
    t = np.array([0, 1, 2])
    with pytest.raises(ValueError, match=r"energies must have shape \(N, C\)"):
        F.energy_hinge_loss(ann.Tensor(np.zeros(4)), t)
    with pytest.raises(ValueError, match="C >= 2"):
        F.energy_log_loss(ann.Tensor(np.zeros((3, 1))), t * 0)
    with pytest.raises(ValueError, match="energies must be finite"):
        F.energy_nll_loss(ann.Tensor(np.array([[0.0, np.inf], [np.nan, 1.0], [0.0, 0.0]])), t * 0)
    with pytest.raises(ValueError, match="does not match input shape"):
        F.energy_loss(E, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 3\]; got 4"):
        F.energy_perceptron_loss(E, np.array([0, 1, 4]))
    with pytest.raises(TypeError, match="integer dtype"):
        F.energy_loss(E, t.astype(float))
    with pytest.raises(ValueError, match="margin"):
        F.energy_hinge_loss(E, t, margin=-1.0)
    with pytest.raises(ValueError, match="beta"):
        energy.EnergyNLLLoss(beta=0.0)
    with pytest.raises(ValueError, match="gamma"):
        F.energy_square_exp_loss(E, t, gamma=float("inf"))
    with pytest.raises(ValueError, match="reduction"):
        energy.EnergyLogLoss(reduction="avg")


def test_digits_classifier_trained_with_hinge_energy_loss_beats_90_percent():
    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    split = train_val_test_split(x, y, val_fraction=0.0, test_fraction=0.25, seed=0)
    model = nn.MLP([64, 64, 10], seed=0)  # outputs one energy per digit: the answer is the argmin
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = energy.EnergyHingeLoss(margin=1.0)
    for _ in range(8):
        for xb, yb in DataLoader(*split.train, batch_size=32, shuffle=True, seed=0):
            opt.zero_grad()
            loss = loss_fn(model(ann.Tensor(xb)), yb)
            loss.backward()
            opt.step()
    with ann.no_grad():
        pred = model(ann.Tensor(split.test[0])).numpy().argmin(axis=1)
    acc = float((pred == split.test[1]).mean())
    print(f"hinge-energy digits test accuracy {acc:.3f}")
    assert acc > 0.9, acc
