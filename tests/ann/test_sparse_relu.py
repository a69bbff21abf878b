"""``ann.functional.sparse_relu`` and ``nn.SparseReLU``: ReLU's values and gradient (vs PyTorch) plus the nonzero count."""

import numpy as np
import pytest
import torch

import ann
import ann.functional as F
from ann import gradcheck, nn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_relu_equals_torch_relu(dtype):
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(dtype)
    x[0, :3] = 0.0  # the kink: derivative 0, as PyTorch
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).backward(torch.tensor(g))
    ours = ann.Tensor(x, requires_grad=True)
    y, nnz = F.sparse_relu(ours)
    y.backward(g)
    assert y.dtype == dtype and isinstance(nnz, int)
    np.testing.assert_array_equal(y.numpy(), torch.relu(t).detach().numpy())
    np.testing.assert_array_equal(ours.grad, t.grad.numpy())
    assert nnz == int(np.count_nonzero(x > 0))


def test_sparse_relu_threshold_matches_relu_threshold_and_gradcheck():
    x = np.random.default_rng(2).uniform(-2, 2, (4, 6))
    y, nnz = F.sparse_relu(ann.Tensor(x), threshold=0.5)
    np.testing.assert_array_equal(y.numpy(), F.relu(ann.Tensor(x), threshold=0.5).numpy())
    assert nnz == int(np.count_nonzero(x > 0.5))
    gradcheck(lambda t: F.sparse_relu(t, threshold=0.5)[0], [ann.Tensor(x, requires_grad=True)])


def test_sparse_relu_module_trains_like_relu():
    x = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)
    a = nn.Sequential(nn.Linear(4, 6, seed=0), nn.SparseReLU(), nn.Linear(6, 1, seed=1))
    b = nn.Sequential(nn.Linear(4, 6, seed=0), nn.ReLU(), nn.Linear(6, 1, seed=1))
    assert a[1].nnz is None
    for m in (a, b):
        m(ann.Tensor(x)).sum().backward()
    np.testing.assert_array_equal(a(ann.Tensor(x)).numpy(), b(ann.Tensor(x)).numpy())
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
    h = b[0](ann.Tensor(x)).numpy()
    assert a[1].nnz == int(np.count_nonzero(h > 0))


def test_sparse_relu_bad_input():
    with pytest.raises(TypeError, match="floating dtype"):
        F.sparse_relu(ann.Tensor(np.arange(3)))
