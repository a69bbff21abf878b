"""Shared fixtures of the ann tests."""

import numpy as np
import pytest
import torch

from ann.tensor import Tensor


@pytest.fixture
def assert_matches_torch():
    """Check a module against a PyTorch function of the same parameters: output, input and parameter gradients.

    ``check(module, torch_fn, x, grad_out, tol)`` runs ``torch_fn(tx, tparams)``
    with ``tparams`` copies of ``module.named_parameters()`` (same names),
    back-propagates ``grad_out`` through both, and compares everything within
    ``tol`` (rtol and atol). Returns our output Tensor.
    """

    def check(module, torch_fn, x, grad_out, tol):
        tparams = {n: torch.tensor(p.data.copy(), requires_grad=True) for n, p in module.named_parameters()}
        tx = torch.tensor(x, requires_grad=True)
        t_out = torch_fn(tx, tparams)
        (t_out * torch.tensor(grad_out)).sum().backward()
        ox = Tensor(x, requires_grad=True)
        out = module(ox)
        out.backward(grad_out)
        np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=tol, atol=tol)
        for name, p in module.named_parameters():
            assert tparams[name].grad is not None, name
            np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name)
        return out

    return check
