"""Module.to, load_state_dict, Optimizer.step(closure) and zero_grad(set_to_none) as PyTorch's."""

import inspect

import numpy as np
import pytest
import torch

import ann
import ann.functional as F
from ann import nn, optim
from neuro.backend import gpu_available


def _pair():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    ours = nn.Sequential(nn.Linear(3, 4, dtype="float64"), nn.Tanh(), nn.Linear(4, 2, dtype="float64"))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _error(fn):
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


def test_load_state_dict_returns_incompatible_keys_and_raises_torchs_errors():
    ours, theirs = _pair()
    sd = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    bad = {k: v for k, v in sd.items() if k != "2.bias"} | {"extra": np.zeros(1)}
    assert _error(lambda: ours.load_state_dict(bad)) == _error(lambda: theirs.load_state_dict({k: torch.tensor(v) for k, v in bad.items()}))
    o = ours.load_state_dict(bad, strict=False)
    t = theirs.load_state_dict({k: torch.tensor(v) for k, v in bad.items()}, strict=False)
    assert o._fields == t._fields == ("missing_keys", "unexpected_keys")
    assert (o.missing_keys, o.unexpected_keys) == (t.missing_keys, t.unexpected_keys)
    ok = ours.load_state_dict(sd)
    assert repr(ok) == repr(theirs.load_state_dict(theirs.state_dict())) == "<All keys matched successfully>"
    before = ours.state_dict()["0.weight"].copy()
    wrong = sd | {"0.bias": np.zeros(5), "0.weight": sd["0.weight"] + 1}
    assert _error(lambda: ours.load_state_dict(wrong)) == _error(
        lambda: theirs.load_state_dict({k: torch.tensor(v) for k, v in wrong.items()}))
    np.testing.assert_array_equal(ours.state_dict()["0.weight"], before)  # nothing half-loaded


def test_module_to_dtype_and_device_as_torch():
    ours, _ = _pair()
    assert ours.to(np.float32) is ours
    assert all(p.dtype == np.float32 for p in ours.parameters())
    ours.to(dtype="float64").to("cpu").to(device="cpu")
    assert all(p.dtype == np.float64 and isinstance(p.data, np.ndarray) for p in ours.parameters())
    ours.to(ann.Tensor(np.zeros(1, np.float32)))
    assert all(p.dtype == np.float32 for p in ours.parameters())
    ours.register_buffer("steps", np.arange(3))  # not floating: left as it is, as torch
    ours.to(np.float64)
    assert ours.steps.dtype == np.arange(3).dtype
    with pytest.raises(TypeError, match="only accepts floating point"):
        ours.to(np.int64)
    with pytest.raises(TypeError, match="only accepts floating point"):
        torch.nn.Linear(2, 2).to(torch.int64)
    with pytest.raises(ValueError, match="device"):
        ours.to(device="tpu")


@pytest.mark.skipif(gpu_available(), reason="checks the error raised without a GPU")
def test_module_to_cuda_without_a_gpu_says_what_is_missing():
    with pytest.raises(RuntimeError, match="cupy"):
        nn.Linear(2, 2).to("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU")
def test_module_to_cuda_runs_on_cupy():
    import cupy

    m = nn.Linear(3, 2, seed=0)
    ref = m(np.ones((1, 3), np.float32)).numpy()
    m.to("cuda")
    assert all(isinstance(p.data, cupy.ndarray) for p in m.parameters())
    np.testing.assert_allclose(m(cupy.ones((1, 3), np.float32)).numpy(), ref, rtol=1e-6)
    m.to("cpu")
    assert all(isinstance(p.data, np.ndarray) for p in m.parameters())


def test_zero_grad_default_and_set_to_none_false_as_torch():
    ours, theirs = _pair()
    x = np.random.default_rng(0).standard_normal((5, 3))
    for model, opt in ((ours, optim.SGD(ours.parameters(), lr=0.1)), (theirs, torch.optim.SGD(theirs.parameters(), lr=0.1))):
        assert inspect.signature(opt.zero_grad).parameters["set_to_none"].default is True
        assert inspect.signature(model.zero_grad).parameters["set_to_none"].default is True
    ours(x).sum().backward()
    theirs(torch.tensor(x)).sum().backward()
    sgd_o, sgd_t = optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    sgd_o.zero_grad(set_to_none=False)
    sgd_t.zero_grad(set_to_none=False)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert p.grad is not None and q.grad is not None
        np.testing.assert_array_equal(p.grad, q.grad.numpy())
        assert not p.grad.any()
    sgd_o.zero_grad()
    sgd_t.zero_grad()
    assert all(p.grad is None for p in ours.parameters()) and all(q.grad is None for q in theirs.parameters())
    ours(x).sum().backward()
    ours.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in ours.parameters())


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_step_with_closure_returns_its_loss_and_updates_as_torch(name):
    ours, theirs = _pair()
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    opt_o = getattr(optim, name)(ours.parameters(), lr=0.05)
    opt_t = getattr(torch.optim, name)(theirs.parameters(), lr=0.05)

    def closure_o():
        opt_o.zero_grad()
        loss = F.mse_loss(ours(x), y)
        loss.backward()
        return loss

    def closure_t():
        opt_t.zero_grad()
        loss = torch.nn.functional.mse_loss(theirs(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        return loss

    for _ in range(3):
        lo, lt = opt_o.step(closure_o), opt_t.step(closure_t)
        assert isinstance(lo, ann.Tensor)
        np.testing.assert_allclose(lo.item(), lt.item(), rtol=1e-10)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert opt_o.step() is None


def test_step_closure_runs_with_gradients_enabled():
    m = nn.Linear(2, 1, seed=0)
    opt = optim.SGD(m.parameters(), lr=0.1)

    def closure():
        assert ann.is_grad_enabled()
        loss = m(np.ones((1, 2), np.float32)).sum()
        loss.backward()
        return loss

    with ann.no_grad():
        opt.step(closure)


def test_module_float_double_cpu_as_torch():
    ours, theirs = _pair()
    for method in ("float", "double", "cpu"):
        assert getattr(ours, method)() is ours and getattr(theirs, method)() is theirs
    ours.float()
    theirs.float()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert p.dtype == np.float32 and q.dtype == torch.float32
