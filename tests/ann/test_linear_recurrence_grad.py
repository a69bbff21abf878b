"""The differentiable linear recurrence: values vs a loop, gradients vs PyTorch and finite differences."""

import numpy as np
import torch

from ann.gradcheck import gradcheck
from ann.recurrence import linear_recurrence
from ann.tensor import Tensor


def test_matches_torch_loop_with_h0_and_broadcast_decay():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.0, (3, 1, 10))  # broadcast over the middle axis
    b = rng.standard_normal((3, 4, 10))
    h0 = rng.standard_normal((3, 4))
    ta, tb, th0 = (torch.tensor(x, requires_grad=True) for x in (a, b, h0))
    h, hs = th0, []
    for t in range(10):
        h = ta[..., t] * h + tb[..., t]
        hs.append(h)
    ref = torch.stack(hs, dim=-1)
    g = rng.standard_normal(ref.shape)
    ref.backward(torch.tensor(g))
    xa, xb, xh0 = (Tensor(x, requires_grad=True) for x in (a, b, h0))
    out = linear_recurrence(xa, xb, xh0, axis=-1)
    out.backward(g)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12)
    for ours, theirs in ((xa, ta), (xb, tb), (xh0, th0)):
        assert ours.grad.shape == theirs.shape
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradcheck_on_time_axis_zero():
    rng = np.random.default_rng(1)
    inputs = [Tensor(rng.uniform(-1, 1, (5, 2)), requires_grad=True), Tensor(rng.standard_normal((5, 2)), requires_grad=True)]
    assert gradcheck(lambda a, b: linear_recurrence(a, b, axis=0), inputs)
