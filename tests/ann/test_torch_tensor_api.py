"""The Tensor methods and functions that share PyTorch's names behave as torch's (values, gradients, return types)."""

import numpy as np
import pytest
import torch

import ann
import ann.functional as F
from ann import Tensor
from neuro.backend import gpu_available


def _pair(shape=(2, 3, 4), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def _check(ours, theirs, ox, tx, atol=1e-12):
    """Values, then the gradient of a random contraction, of ours against torch's."""
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), atol=atol)
    g = np.random.default_rng(9).standard_normal(ours.shape)
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(ox.grad, tx.grad.numpy(), atol=atol)


def test_size_numel_dim_tolist_item():
    ox, tx = _pair()
    assert ox.size() == tuple(tx.size()) and isinstance(ox.size(), tuple)
    assert [ox.size(d) for d in (0, 1, 2, -1)] == [tx.size(d) for d in (0, 1, 2, -1)]
    assert ox.size().numel() == tx.size().numel() == ox.numel() == tx.numel()
    assert ox.dim() == tx.dim()
    assert ox.tolist() == tx.tolist()
    assert Tensor([[2.5]]).item() == torch.tensor([[2.5]]).item()
    assert ox.device == "cpu"


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t.view(6, 4),
        lambda t: t.view(-1),
        lambda t: t.permute(2, 0, 1),
        lambda t: t.permute((1, 2, 0)),
        lambda t: t.transpose(0, 2),  # torch's swap of two axes
        lambda t: t.transpose(-1, 1),
        lambda t: t.sum(dim=1),
        lambda t: t.sum(dim=(0, 2), keepdim=True),
        lambda t: t.mean(dim=-1),
        lambda t: t.mean(dim=0, keepdim=True),
        lambda t: t.max(dim=1).values,
        lambda t: t.min(dim=2, keepdim=True).values,
        lambda t: t.float().double(),
    ],
)
def test_shape_ops_and_reductions_match_torch(op):
    ox, tx = _pair()
    _check(op(ox), op(tx), ox, tx, atol=1e-6)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_dim_keyword_matches_torch(fn, dim):
    ox, tx = _pair()
    _check(getattr(F, fn)(ox, dim=dim), getattr(torch.nn.functional, fn)(tx, dim=dim), ox, tx)
    np.testing.assert_array_equal(getattr(F, fn)(ox, dim).numpy(), getattr(F, fn)(ox, axis=dim).numpy())


def test_glu_dim_matches_torch():
    ox, tx = _pair((2, 4, 3))
    _check(F.glu(ox, dim=1), torch.nn.functional.glu(tx, dim=1), ox, tx)


def test_argmax_argmin_match_torch_including_ties_and_keepdim():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, -1.0], [0.0, 5.0, 5.0, 5.0]])
    ours, theirs = Tensor(x), torch.tensor(x)
    for name in ("argmax", "argmin"):
        for dim, keep in ((None, False), (0, False), (1, False), (1, True), (-1, True), (None, True)):
            o = getattr(ours, name)(dim, keepdim=keep) if dim is not None or keep else getattr(ours, name)()
            t = getattr(theirs, name)(dim, keepdim=keep) if dim is not None or keep else getattr(theirs, name)()
            assert o.dtype == np.int64
            assert o.shape == tuple(t.shape), (name, dim, keep)
            np.testing.assert_array_equal(o.numpy(), t.numpy(), err_msg=f"{name} dim={dim} keepdim={keep}")


def test_max_with_dim_returns_values_and_indices_as_torch():
    ox, tx = _pair()
    o, t = ox.max(dim=2), tx.max(dim=2)
    assert isinstance(o, ann.ValuesIndices) and o._fields == ("values", "indices")
    values, indices = o  # unpacks like torch.return_types.max
    np.testing.assert_allclose(values.numpy(), t.values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), t.indices.numpy())
    # NumPy's keyword keeps NumPy's meaning: the values only
    np.testing.assert_allclose(ox.max(axis=2).numpy(), t.values.detach().numpy())


def test_cat_and_stack_dim_match_torch():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_array_equal(ann.cat([Tensor(a), Tensor(b)], dim=1).numpy(), torch.cat([ta, tb], dim=1).numpy())
    np.testing.assert_array_equal(ann.cat([Tensor(a), Tensor(b)]).numpy(), torch.cat([ta, tb]).numpy())
    np.testing.assert_array_equal(ann.concatenate([Tensor(a), Tensor(b)], dim=-1).numpy(), torch.cat([ta, tb], -1).numpy())
    np.testing.assert_array_equal(ann.stack([Tensor(a), Tensor(b)], dim=2).numpy(), torch.stack([ta, tb], dim=2).numpy())


def test_axis_and_dim_together_must_agree():
    x = Tensor(np.ones((2, 3)))
    assert x.sum(axis=1, dim=1).shape == (2,)
    with pytest.raises(TypeError, match="axis or dim"):
        x.sum(axis=0, dim=1)
    with pytest.raises(TypeError, match="axis or dim"):
        F.softmax(x, dim=0, axis=1)
    with pytest.raises(ValueError, match="permutation"):
        x.permute(0, 0)


def test_dtype_and_device_conversions_as_torch():
    ox, tx = _pair((3,))
    assert ox.float().dtype == np.float32 and tx.float().dtype == torch.float32
    assert ox.double() is not ox and ox.double().dtype == np.float64
    assert ox.long().dtype == np.int64 and not ox.long().requires_grad
    assert ox.to("cpu") is ox and ox.to(np.float64) is ox  # nothing to change: the same tensor, as torch
    y = ox.to(np.float32)
    assert y.dtype == np.float32
    y.sum().backward()
    assert ox.grad.dtype == np.float64  # the gradient comes back in the source dtype
    assert ox.to(Tensor(np.zeros(1, np.float32))).dtype == np.float32
    with pytest.raises(ValueError, match="device"):
        ox.to(device="tpu")
    z = Tensor(np.zeros(2, np.float32))
    assert z.requires_grad_() is z and z.requires_grad


@pytest.mark.skipif(gpu_available(), reason="checks the error raised without a GPU")
def test_to_cuda_without_a_gpu_says_what_is_missing():
    with pytest.raises(RuntimeError, match="cupy"):
        Tensor(np.zeros(2)).to("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU")
def test_to_cuda_and_back_is_differentiable():
    x = Tensor(np.arange(3.0), requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda"
    (y * y).sum().backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, 2 * np.arange(3.0))
    assert y.cpu().device == "cpu"


@pytest.mark.parametrize("fn", ["zeros", "ones"])
def test_zeros_and_ones_take_torchs_size_forms(fn):
    for size in ((2, 3), ((2, 3),), ([4],), ((),)):
        ours, theirs = getattr(ann, fn)(*size), getattr(torch, fn)(*size)
        assert ours.shape == tuple(theirs.shape) and ours.dtype == np.float32 and theirs.dtype == torch.float32
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    t = getattr(ann, fn)(3, dtype=np.float64, requires_grad=True, device="cpu")
    assert t.dtype == np.float64 and t.requires_grad and t.device == "cpu"
