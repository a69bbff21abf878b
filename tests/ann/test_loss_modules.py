"""Loss modules against torch.nn's: constructor arguments in torch's order, values and gradients."""

import inspect
import warnings

import numpy as np
import pytest
import torch

from ann import Tensor, nn

LOSSES = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"]


def _inputs(name, rng):
    """``(input, target)`` NumPy arrays fit for loss ``name`` (N=5, C=4, a spatial axis of 3 for the class losses)."""
    x = rng.standard_normal((5, 4, 3))
    if name in ("CrossEntropyLoss", "NLLLoss"):
        t = rng.integers(0, 4, (5, 3))
        t[0, 0] = -100 if name == "NLLLoss" else t[0, 0]
        if name == "NLLLoss":
            x = x - np.log(np.exp(x).sum(1, keepdims=True))
        return x, t
    if name == "BCELoss":
        return 1 / (1 + np.exp(-x)), rng.uniform(0, 1, x.shape)
    if name == "BCEWithLogitsLoss":
        return x, (rng.uniform(0, 1, x.shape) < 0.5).astype(float)
    if name == "KLDivLoss":
        logp = x - np.log(np.exp(x).sum(1, keepdims=True))
        q = rng.uniform(0.1, 1, x.shape)
        return logp, q / q.sum(1, keepdims=True)
    return x, rng.standard_normal(x.shape)


CASES = [
    ("CrossEntropyLoss", {}),
    ("CrossEntropyLoss", {"label_smoothing": 0.2, "reduction": "sum"}),
    ("CrossEntropyLoss", {"weight": [1.0, 2.0, 0.5, 1.5], "ignore_index": 2}),
    ("NLLLoss", {}),
    ("NLLLoss", {"weight": [1.0, 2.0, 0.5, 1.5], "reduction": "none"}),
    ("MSELoss", {}),
    ("MSELoss", {"reduction": "none"}),
    ("L1Loss", {"reduction": "sum"}),
    ("HuberLoss", {}),
    ("HuberLoss", {"delta": 0.3, "reduction": "sum"}),
    ("BCELoss", {}),
    ("BCELoss", {"weight": [[1.0], [2.0], [0.5], [1.5]]}),
    ("BCEWithLogitsLoss", {"pos_weight": [[2.0], [1.0], [0.5], [3.0]], "reduction": "none"}),
    ("KLDivLoss", {"reduction": "batchmean"}),
    ("KLDivLoss", {}),
]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # torch's note on KLDivLoss's default
@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_loss_module_matches_torch(name, kw):
    x, t = _inputs(name, np.random.default_rng(0))
    ours = getattr(nn, name)(**{k: (np.array(v) if isinstance(v, list) else v) for k, v in kw.items()})
    theirs = getattr(torch.nn, name)(**{k: (torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v) for k, v in kw.items()})
    ox, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    o, th = ours(ox, t), theirs(tx, torch.tensor(t))
    np.testing.assert_allclose(o.numpy(), th.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(o.shape)
    o.backward(g)
    th.backward(torch.tensor(g))
    np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())  # class weights are buffers, as torch


@pytest.mark.parametrize("name", LOSSES)
def test_constructor_arguments_in_torchs_order_with_torchs_defaults(name):
    ours = inspect.signature(getattr(nn, name)).parameters
    theirs = inspect.signature(getattr(torch.nn, name)).parameters
    assert list(ours) == list(theirs)
    for p in theirs:
        assert ours[p].default == theirs[p].default, p
    o, t = getattr(nn, name)(), getattr(torch.nn, name)()
    assert o.reduction == t.reduction


@pytest.mark.parametrize("size_average,reduce", [(False, None), (None, False), (True, True)])
def test_legacy_size_average_and_reduce_map_as_torch(size_average, reduce):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.nn.MSELoss(size_average=size_average, reduce=reduce).reduction
    with pytest.warns(UserWarning, match="reduction"):
        assert nn.MSELoss(size_average=size_average, reduce=reduce).reduction == expected


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="delta"):
        nn.HuberLoss(delta=0.0)


def test_weight_buffer_follows_module_to():
    loss = nn.CrossEntropyLoss(weight=np.ones(3))
    loss.to(np.float32)
    assert loss.weight.dtype == np.float32
    assert "CrossEntropyLoss()" == repr(nn.CrossEntropyLoss())
