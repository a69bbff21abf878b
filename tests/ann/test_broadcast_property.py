"""Property test: broadcasting arithmetic and its reverse (gradient reduction) agree with PyTorch for random shapes."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ann


@st.composite
def broadcastable_pair(draw):
    ndim = draw(st.integers(0, 4))
    base = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
    shapes = []
    for _ in range(2):
        drop = draw(st.integers(0, ndim))
        shape = [1 if draw(st.booleans()) else n for n in base[drop:]]
        shapes.append(tuple(shape))
    return shapes


@settings(max_examples=40, deadline=None)
@given(broadcastable_pair(), st.sampled_from(["add", "sub", "mul", "div"]), st.integers(0, 2**31 - 1))
def test_broadcast_grad_matches_torch(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a_np, b_np = (rng.uniform(0.5, 2.0, s) for s in shapes)
    a, b = ann.Tensor(a_np, requires_grad=True), ann.Tensor(b_np, requires_grad=True)
    at, bt = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    y, yt = fn(a, b), fn(at, bt)
    g = rng.standard_normal(tuple(yt.shape))
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    assert a.grad.shape == a_np.shape and b.grad.shape == b_np.shape
    np.testing.assert_allclose(a.grad, at.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-12)
