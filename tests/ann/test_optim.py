"""Optimizers (20 steps vs torch.optim within 1e-6, float64), schedulers and clipping against PyTorch."""

import math

import numpy as np
import pytest
import torch

import ann
import ann.functional as F
from ann import nn, optim

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, weight_decay=0.01, betas=(0.85, 0.99))),
]


def _models():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    ours = nn.Sequential(nn.Linear(4, 8, dtype=np.float64), nn.Tanh(), nn.Linear(8, 3, dtype=np.float64))
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return ours, tm


DATA = np.random.default_rng(0).standard_normal((16, 4))
LABELS = np.random.default_rng(1).integers(0, 3, 16)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_twenty_steps_match_torch_optim(name, kwargs):
    ours, tm = _models()
    opt = getattr(optim, name)(ours.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(tm.parameters(), foreach=False, **kwargs)
    x, y = ann.Tensor(DATA), LABELS
    xt, yt = torch.tensor(DATA), torch.tensor(LABELS)
    for step in range(20):
        rows = slice(step % 2 * 8, step % 2 * 8 + 8)  # alternate mini-batches
        opt.zero_grad()
        F.cross_entropy(ours(x[rows]), y[rows]).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(xt[rows]), yt[rows]).backward()
        topt.step()
    for (k, v), (tk, tv) in zip(ours.state_dict().items(), tm.state_dict().items()):
        assert k == tk
        np.testing.assert_allclose(v, tv.numpy(), rtol=0, atol=1e-6, err_msg=k)
        assert not np.allclose(v, _models()[0].state_dict()[k])  # the parameters did move


def test_param_groups_with_their_own_lr():
    ours, tm = _models()
    opt = optim.SGD([{"params": ours[0].parameters(), "lr": 0.5}, {"params": ours[2].parameters()}], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([{"params": tm[0].parameters(), "lr": 0.5}, {"params": tm[2].parameters()}], lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(ours(DATA), LABELS).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(torch.tensor(DATA)), torch.tensor(LABELS)).backward()
        topt.step()
    for v, tv in zip(ours.state_dict().values(), tm.state_dict().values()):
        np.testing.assert_allclose(v, tv.numpy(), atol=1e-10)


def test_optimizer_bad_arguments():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="require grad"):
        optim.Adam([ann.Tensor(np.zeros(2))])


SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.1, end_factor=1.0, total_iters=6)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.2, total_iters=4)),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULERS)])
def test_scheduler_lr_sequence_matches_torch(name, kwargs):
    p = nn.Parameter(np.zeros(2))
    tp = torch.nn.Parameter(torch.zeros(2))
    opt, topt = optim.SGD([p], lr=0.2), torch.optim.SGD([tp], lr=0.2)
    sched = getattr(optim, name)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    ours, theirs = [], []
    for _ in range(15):
        ours.append(opt.param_groups[0]["lr"])
        theirs.append(topt.param_groups[0]["lr"])
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_lambda_scheduler():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    s = optim.LambdaLR(opt, lambda e: 1.0 / (e + 1))
    s.step()
    s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ps = [nn.Parameter(np.zeros_like(g)) for g in grads]
    tps = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for p, tp, g in zip(ps, tps, grads):
        p.grad = g.copy()
        tp.grad = torch.tensor(g)
    total = optim.clip_grad_norm_(ps, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert total == pytest.approx(ttotal.item(), rel=1e-12)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_matches_torch():
    g = np.random.default_rng(1).standard_normal((4, 4))
    p, tp = nn.Parameter(np.zeros((4, 4))), torch.nn.Parameter(torch.zeros(4, 4, dtype=torch.float64))
    p.grad, tp.grad = g.copy(), torch.tensor(g)
    optim.clip_grad_value_([p], 0.3)
    torch.nn.utils.clip_grad_value_([tp], 0.3)
    np.testing.assert_array_equal(p.grad, tp.grad.numpy())


def test_optimizer_state_roundtrip_through_npz(tmp_path):
    """Save model + Adam state mid-training, continue in a fresh copy: identical trajectories."""
    ours, _ = _models()
    opt = optim.Adam(ours.parameters(), lr=0.01, amsgrad=True)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)

    def train(model, o, s, n):
        for _ in range(n):
            o.zero_grad()
            F.cross_entropy(model(DATA), LABELS).backward()
            o.step()
            s.step()

    train(ours, opt, sched, 3)
    ann.io.save(tmp_path / "ckpt.npz", model=ours, optimizer=opt, scheduler=sched, extra={"epoch": 3})
    clone, _ = _models()
    opt2 = optim.Adam(clone.parameters(), lr=0.5, amsgrad=True)
    sched2 = optim.StepLR(opt2, step_size=2, gamma=0.5)
    extra = ann.io.load(tmp_path / "ckpt.npz", model=clone, optimizer=opt2, scheduler=sched2)
    assert extra == {"epoch": 3}
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    train(ours, opt, sched, 4)
    train(clone, opt2, sched2, 4)
    for v, w in zip(ours.state_dict().values(), clone.state_dict().values()):
        np.testing.assert_array_equal(v, w)
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:  # readable without pickle
        assert "model/0.weight" in f.files and "optimizer/state/0/exp_avg" in f.files
