"""``ann.sparse``: SparseLinear and SparseFFN equal the dense layers they were built from."""

import numpy as np
import pytest
import torch

import ann
from ann import nn
from ann.sparse import SparseFFN, SparseLinear


def _close(a, b, scale):
    """float32 results within 1e-5 of the scale of the summed terms."""
    assert a.shape == b.shape
    assert np.all(np.abs(a - b) <= 1e-5 * (scale + 1e-6)), np.max(np.abs(a - b) / (scale + 1e-6))


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("shape", [(40,), (3, 40), (2, 4, 40)])
def test_sparse_linear_equals_linear_and_torch(sparsity, shape):
    rng = np.random.default_rng(0)
    lin = nn.Linear(40, 24, seed=0)
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < sparsity] = 0
    if sparsity == 0.0:
        x[x == 0] = 1.0
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(lin.weight.data), torch.tensor(lin.bias.data)).numpy()
    out = SparseLinear.from_linear(lin)(ann.Tensor(x)).numpy()
    scale = np.abs(x) @ np.abs(lin.weight.data.T) + np.abs(lin.bias.data)
    _close(out, ref, scale)
    _close(out, lin(ann.Tensor(x)).numpy(), scale)


def test_sparse_linear_non_contiguous_input_and_no_bias():
    lin = nn.Linear(30, 7, bias=False, seed=1)
    x = np.random.default_rng(1).standard_normal((5, 60)).astype(np.float32)[:, ::2]
    x[:, :20] = 0
    out = SparseLinear.from_linear(lin)(x).numpy()
    _close(out, x @ lin.weight.data.T, np.abs(x) @ np.abs(lin.weight.data.T))


def _ffn_pair(activation, width=32, d=12, seed=0, bias_shift=0.0):
    block = nn.TransformerBlock(d, 2, width, activation=activation, seed=seed)
    block.linear1.bias.data += np.float32(bias_shift)
    return block, SparseFFN.from_block(block)


@pytest.mark.parametrize("activation", ["relu", "reglu"])
@pytest.mark.parametrize("bias_shift", [-100.0, -1.0, 0.0, 100.0])  # all zero, sparse, ~half, all active
@pytest.mark.parametrize("shape", [(12,), (1, 12), (3, 5, 12)])
def test_sparse_ffn_equals_block_feedforward(activation, bias_shift, shape):
    block, sparse = _ffn_pair(activation, bias_shift=bias_shift)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    dense = block.feedforward(ann.Tensor(x)).numpy()
    out = sparse(ann.Tensor(x)).numpy()
    h = block.act(block.linear1(ann.Tensor(x))).numpy().reshape(-1, 32)
    scale = (np.abs(h) @ np.abs(block.linear2.weight.data.T) + np.abs(block.linear2.bias.data) + 1.0).reshape(dense.shape)
    _close(out, dense, scale)
    assert sparse.last_active == int(np.count_nonzero((h != 0).any(axis=0)))
    if bias_shift == -100.0:
        assert sparse.last_active == 0
    if bias_shift == 100.0 and activation == "relu":
        assert sparse.last_density == 1.0


@pytest.mark.parametrize("kind", ["shifted_relu", "shifted_reglu"])
def test_sparse_ffn_after_relufy_with_shift(kind):
    block = nn.TransformerBlock(12, 2, 32, activation="gelu" if kind == "shifted_relu" else "swiglu", seed=3)
    ann.sparsity.relufy(block, "shifted_relu", shift=0.3)
    sparse = SparseFFN.from_block(block)
    assert sparse.activation == kind and sparse.shift == 0.3
    x = np.random.default_rng(3).standard_normal((4, 12)).astype(np.float32)
    _close(sparse(x).numpy(), block.feedforward(ann.Tensor(x)).numpy(), 1.0 + np.abs(block.feedforward(ann.Tensor(x)).numpy()))


def test_sparse_ffn_from_sequential_mlp():
    seq = nn.Sequential(nn.Linear(10, 64, seed=0), nn.ReLU(), nn.Linear(64, 3, seed=1))
    x = np.random.default_rng(4).standard_normal((6, 10)).astype(np.float32)
    out = SparseFFN.from_block(seq)(x).numpy()
    _close(out, seq(ann.Tensor(x)).numpy(), 1.0 + np.abs(seq(ann.Tensor(x)).numpy()))


def test_sparse_bad_input():
    lin = nn.Linear(4, 3, seed=0)
    sl = SparseLinear.from_linear(lin)
    with pytest.raises(ValueError, match=r"expects x of shape \(\.\.\., 4\)"):
        sl(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="same dtype"):
        sl(np.ones((2, 4), np.float64))
    with pytest.raises(RuntimeError, match="inference-only"):
        sl(ann.Tensor(np.ones(4, np.float32), requires_grad=True))
    with ann.no_grad():
        sl(ann.Tensor(np.ones(4, np.float32), requires_grad=True))
    with pytest.raises(ValueError, match="activation must be one of"):
        SparseFFN.from_block(nn.TransformerBlock(8, 2, 16, activation="gelu", seed=0))
    with pytest.raises(ValueError, match="linear2 takes"):
        SparseFFN(nn.Linear(4, 8), nn.Linear(6, 4))
    with pytest.raises(TypeError, match="Linear"):
        SparseLinear.from_linear(nn.ReLU())
    with pytest.raises(ValueError, match="Sequential"):
        SparseFFN.from_block(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


@pytest.mark.gpu
@pytest.mark.parametrize("activation", ["relu", "reglu"])
def test_sparse_ffn_on_cupy_equals_numpy(activation):
    import cupy

    block, sparse = _ffn_pair(activation, bias_shift=-0.5)
    x = np.random.default_rng(5).standard_normal((3, 12)).astype(np.float32)
    expected = sparse(x).numpy()
    sparse.to(backend="cupy")
    out = sparse(cupy.asarray(x))
    assert isinstance(out.data, cupy.ndarray)
    np.testing.assert_allclose(out.data.get(), expected, rtol=1e-5, atol=1e-5)
