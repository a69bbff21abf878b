"""The float32 erf / GELU fast paths (ann.erf_kernel) against their NumPy references, SciPy and PyTorch."""

import numpy as np
import pytest
import scipy.special
import torch

import ann.erf_kernel  # noqa: F401  (registers the kernels)
from ann import Tensor, gradcheck
from ann.activations import gelu
from neuro.kernels import call


def _sweep():
    """float32 points across every branch of the approximation, tiny magnitudes and the specials."""
    grid = np.linspace(-6, 6, 400_001, dtype=np.float32)
    tiny = np.logspace(-38, 0.7, 20_000).astype(np.float32)
    return np.concatenate([grid, tiny, -tiny, np.float32([0.0, -0.0, 1.0, 2.2, 3.92, -3.92])])


def test_erf_fast_path_is_within_float32_ulps_of_the_exact_value():
    x = _sweep()
    exact = scipy.special.erf(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    fast = call("erf", x, impl="cpu")
    assert fast.dtype == np.float32
    assert (np.abs(fast - exact) / ulp).max() <= 1.5  # torch.erf: within 1 ulp
    np.testing.assert_allclose(fast, torch.erf(torch.tensor(x)).numpy(), rtol=3e-7, atol=1e-7)
    np.testing.assert_array_equal(call("erf", x, impl="reference"), scipy.special.erf(x))
    special = call("erf", np.float32([np.nan, np.inf, -np.inf, 50.0, -50.0]), impl="cpu")
    np.testing.assert_array_equal(special, np.float32([np.nan, 1, -1, 1, -1]))


@pytest.mark.parametrize("shape, order", [((3, 5, 7), "C"), ((64, 33), "F"), ((2500,), "C"), ((0, 4), "C")])
def test_gelu_and_its_backward_fast_paths_match_the_reference_and_torch(shape, order):
    rng = np.random.default_rng(0)
    x = np.asarray(3 * rng.standard_normal(shape), dtype=np.float32, order=order)
    g = np.asarray(rng.standard_normal(shape), dtype=np.float32, order=order)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.gelu(tx)
    ty.backward(torch.tensor(g))
    for impl in ("cpu", "reference"):
        y = call("gelu", x, impl=impl)
        dx = call("gelu_backward", x, g, impl=impl)
        assert y.dtype == dx.dtype == np.float32 and y.shape == dx.shape == shape
        # 0.5 + 0.5 erf(x / sqrt 2) rounds at the 6e-8 of 0.5: y = x Phi(x) carries |x| times that
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-6)
        # the derivative crosses 0 near x = -0.75: compare on the scale of g (values up to about 4)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(call("gelu", x, impl="cpu"), call("gelu", x, impl="reference"), rtol=1e-6, atol=1e-6)


def test_non_float32_input_takes_the_reference():
    x = np.linspace(-4, 4, 101)
    np.testing.assert_array_equal(call("erf", x, impl="cpu"), scipy.special.erf(x))
    np.testing.assert_array_equal(call("gelu", x, impl="cpu"), call("gelu", x, impl="reference"))
    assert call("gelu_backward", x, np.ones_like(x), impl="cpu").dtype == np.float64


def test_fused_gelu_op_gradchecks_and_matches_torch_in_float32():
    rng = np.random.default_rng(1)
    gradcheck(gelu, [Tensor(rng.standard_normal((4, 5)), requires_grad=True)])
    x = (3 * rng.standard_normal((8, 16))).astype(np.float32)
    ours = Tensor(x, requires_grad=True)
    gelu(ours).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.gelu(tx).sum().backward()
    np.testing.assert_allclose(ours.grad, tx.grad.numpy(), rtol=1e-6, atol=1e-6)
