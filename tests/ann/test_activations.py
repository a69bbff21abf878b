"""Every activation against PyTorch: values and gradients, float32 and float64, kinks included."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ann
import ann.functional as F
from ann import activations

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
# PyTorch's hardsigmoid/hardswish kernels use float32 constants (1.0f / 6.0f) even in float64:
# we use exact constants, so those differ from PyTorch by ~3e-8 relative in float64.
LOOSE64 = {"hard_sigmoid", "hard_silu"}

# name -> (ours, torch reference)
PAIRS = {
    "relu": (F.relu, torch.relu),
    "relu6": (F.relu6, TF.relu6),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu": (F.elu, TF.elu),
    "elu_0.5": (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5)),
    "selu": (F.selu, TF.selu),
    "celu": (F.celu, TF.celu),
    "celu_2": (lambda x: F.celu(x, 2.0), lambda x: TF.celu(x, 2.0)),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, TF.silu),
    "swish_beta": (lambda x: F.swish(x, 1.5), lambda x: x * torch.sigmoid(1.5 * x)),
    "hard_silu": (F.hard_silu, TF.hardswish),
    "mish": (F.mish, TF.mish),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "hard_sigmoid": (F.hard_sigmoid, TF.hardsigmoid),
    "tanh": (F.tanh, torch.tanh),
    "softplus": (F.softplus, TF.softplus),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), lambda x: TF.softplus(x, beta=2.0, threshold=3.0)),
    "softsign": (F.softsign, TF.softsign),
    "exponential": (F.exponential, torch.exp),
    "linear": (lambda x: activations.linear(x) * 1.0, lambda x: x * 1.0),
    "shifted_relu": (lambda x: F.shifted_relu(x, 0.5), lambda x: torch.relu(x - 0.5)),
    "relu_keras": (lambda x: F.relu(x, negative_slope=0.1, max_value=1.5, threshold=0.3),
                   lambda x: torch.where(x > 0.3, torch.clamp(x, max=1.5), 0.1 * (x - 0.3))),
    "softmax": (F.softmax, lambda x: torch.softmax(x, -1)),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda x: torch.softmax(x, 0)),
    "log_softmax": (F.log_softmax, lambda x: torch.log_softmax(x, -1)),
    "glu": (F.glu, lambda x: TF.glu(x, -1)),
    "glu_axis0": (lambda x: F.glu(x, axis=0), lambda x: TF.glu(x, 0)),
    "swiglu": (F.swiglu, lambda x: x.chunk(2, -1)[0] * TF.silu(x.chunk(2, -1)[1])),
    "geglu": (F.geglu, lambda x: x.chunk(2, -1)[0] * TF.gelu(x.chunk(2, -1)[1])),
    "reglu": (F.reglu, lambda x: x.chunk(2, -1)[0] * torch.relu(x.chunk(2, -1)[1])),
    "prelu": (lambda x: F.prelu(x, 0.3), lambda x: TF.prelu(x, torch.tensor([0.3], dtype=x.dtype))),
}

# points where PyTorch's derivative has a convention: the kinks of every piecewise function
KINKS = np.array([-3.0, -1.0, 0.0, 0.3, 1.5, 3.0, 6.0, 0.5, 1.0, 20.0, 1.5 / 2.0])


def _check(ours, theirs, x_np, dtype, seed=0, name=""):
    tol = dict(rtol=1e-7, atol=1e-9) if dtype == np.float64 and name in LOOSE64 else TOL[dtype]
    x = ann.Tensor(x_np.astype(dtype), requires_grad=True)
    xt = torch.tensor(x_np.astype(dtype), requires_grad=True)
    y = ours(x)
    yt = theirs(xt)
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **tol)
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(PAIRS))
def test_activation_matches_torch_on_random_inputs(name, dtype):
    ours, theirs = PAIRS[name]
    x = np.random.default_rng(3).uniform(-5, 5, size=(4, 6))
    _check(ours, theirs, x, dtype, name=name)


KINK_NAMES = ["relu", "relu6", "leaky_relu", "leaky_relu_0.2", "elu", "elu_0.5", "selu", "celu", "celu_2",
              "hard_silu", "hard_sigmoid", "softplus", "softplus_beta", "shifted_relu", "prelu", "softsign",
              "gelu", "silu", "mish"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", KINK_NAMES)
def test_derivative_at_kinks_equals_torch(name, dtype):
    ours, theirs = PAIRS[name]
    _check(ours, theirs, np.concatenate([KINKS, -KINKS]).reshape(2, -1), dtype, name=name)


def test_relu_family_derivative_at_zero_is_zero():
    for name in ["relu", "relu6", "shifted_relu"]:
        x = ann.Tensor(np.array([0.0, 1.0 if name != "shifted_relu" else 1.0]), requires_grad=True)
        fn = activations.get(name, shift=1.0) if name == "shifted_relu" else activations.get(name)
        fn(x).sum().backward()
        assert x.grad[0] == 0.0 and (name == "shifted_relu" or x.grad[1] == 1.0)


def test_keras_relu_options_at_kinks():
    x = ann.Tensor(np.array([0.3, 1.5, 0.29, 1.49, 2.0]), requires_grad=True)
    y = F.relu(x, negative_slope=0.1, max_value=1.5, threshold=0.3)
    np.testing.assert_allclose(y.numpy(), [0.0, 1.5, 0.1 * (0.29 - 0.3), 1.49, 1.5])
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [0.1, 0.0, 0.1, 1.0, 0.0])


def test_prelu_per_channel_slope_is_learnable_and_matches_torch():
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((2, 3, 4))
    w_np = np.array([0.1, 0.25, -0.2])
    x, w = ann.Tensor(x_np, requires_grad=True), ann.Tensor(w_np, requires_grad=True)
    xt, wt = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    y, yt = F.prelu(x, w), TF.prelu(xt, wt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, wt.grad.numpy(), rtol=1e-12)
    module = ann.nn.PReLU(3, init=0.2, dtype=np.float64)
    assert list(module.state_dict()) == ["weight"] and module(x).shape == x.shape
    with pytest.raises(ValueError, match="prelu weight"):
        F.prelu(x, ann.Tensor(np.ones(4)))


def test_softmax_is_stable_for_huge_and_infinite_logits():
    x = ann.Tensor(np.array([[1e4, 0.0, -1e4], [0.0, -np.inf, 1.0]], np.float32), requires_grad=True)
    xt = torch.tensor(x.data, requires_grad=True)
    for ours, theirs in [(F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)]:
        x.grad, xt.grad = None, None
        y, yt = ours(x), theirs(xt, -1)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-6)
        w = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]], np.float32)
        (ann.where(np.isfinite(y.data), y, 0.0) * w).sum().backward()
        (torch.where(torch.isfinite(yt), yt, 0) * torch.tensor(w)).sum().backward()
        assert np.isfinite(x.grad).all()
        np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_gradcheck_every_registered_activation():
    rng = np.random.default_rng(5)
    x = rng.uniform(-2.5, 2.5, size=(2, 4))
    x[np.abs(x) < 0.05] += 0.2  # keep finite differences away from kinks
    for name in activations.names():
        fn = activations.get(name)
        x_use = x + 0.6 if name in ("shifted_relu",) else x
        assert ann.gradcheck(fn, [ann.Tensor(x_use, requires_grad=True)], atol=1e-6, rtol=1e-4), name


def test_registry_lookup_params_aliases_and_errors():
    names = activations.names()
    for required in ["relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu", "hard_silu", "mish",
                     "sigmoid", "hard_sigmoid", "tanh", "softplus", "softsign", "exponential", "linear", "softmax",
                     "log_softmax", "glu", "swiglu", "geglu", "reglu", "shifted_relu"]:
        assert required in names
    assert activations.get("swish") is activations.get("silu")
    assert activations.get("ReLU") is F.relu
    f = activations.get("leaky_relu", negative_slope=0.5)
    np.testing.assert_allclose(f(ann.Tensor(np.array([-2.0]))).numpy(), [-1.0])
    np.testing.assert_allclose(activations.get("gelu_tanh")(ann.Tensor(np.array([1.0]))).numpy(),
                               TF.gelu(torch.tensor([1.0], dtype=torch.float64), approximate="tanh").numpy())
    with pytest.raises(ValueError, match="unknown activation 'nope'.*relu"):
        activations.get("nope")
    with pytest.raises(TypeError, match="no parameter 'alpha'"):
        activations.get("relu", alpha=1.0)
    with pytest.raises(ValueError, match="even size"):
        F.glu(ann.Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(ann.Tensor(np.ones(2)), approximate="fast")


@pytest.mark.parametrize("cls,kwargs,ref", [
    (ann.nn.ReLU, {}, torch.nn.ReLU()), (ann.nn.LeakyReLU, {"negative_slope": 0.2}, torch.nn.LeakyReLU(0.2)),
    (ann.nn.GELU, {"approximate": "tanh"}, torch.nn.GELU("tanh")), (ann.nn.Softmax, {"dim": 0}, torch.nn.Softmax(0)),
    (ann.nn.Softplus, {"beta": 2.0}, torch.nn.Softplus(2.0)), (ann.nn.Hardswish, {}, torch.nn.Hardswish()),
    (ann.nn.GLU, {"dim": -1}, torch.nn.GLU(-1)), (ann.nn.ELU, {"alpha": 0.7}, torch.nn.ELU(0.7)),
])
def test_activation_modules_match_torch_modules(cls, kwargs, ref):
    x = np.random.default_rng(2).standard_normal((3, 4))
    np.testing.assert_allclose(cls(**kwargs)(ann.Tensor(x)).numpy(), ref(torch.tensor(x)).numpy(), rtol=1e-12)
