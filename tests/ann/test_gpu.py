"""The same ann code on CuPy arrays: values and gradients equal the NumPy run (needs a CUDA GPU)."""

import numpy as np
import pytest

import ann
import ann.functional as F
from ann import nn, optim
from neuro.backend import asnumpy, gpu_available

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU")]


def _run(xp):
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((8, 6)))
    y = xp.asarray(rng.integers(0, 3, 8))
    model = nn.MLP([6, 16, 3], activation="gelu", dtype=np.float64, seed=0)
    if xp is not np:
        model.to(backend="cupy")
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        h = model(ann.Tensor(x))
        loss = F.cross_entropy(h, y) + F.mse_loss(F.softmax(h), F.softmax(h).detach()) + h[y.astype(int) % 2].var()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses, {k: asnumpy(v) for k, v in model.state_dict().items()}


def test_training_on_cupy_matches_numpy():
    import cupy

    losses_np, sd_np = _run(np)
    losses_cp, sd_cp = _run(cupy)
    np.testing.assert_allclose(losses_cp, losses_np, rtol=1e-9)
    for k in sd_np:
        np.testing.assert_allclose(sd_cp[k], sd_np[k], rtol=1e-9, atol=1e-12)


def test_every_activation_on_cupy_matches_numpy():
    import cupy

    x_np = np.random.default_rng(1).uniform(-4, 4, (3, 8))
    for name in ann.activations.names():
        fn = ann.activations.get(name)
        out = []
        for xp in (np, cupy):
            x = ann.Tensor(xp.asarray(x_np), requires_grad=True)
            y = fn(x)
            y.sum().backward()
            assert type(y.data).__module__.split(".")[0] == xp.__name__
            out.append((asnumpy(y.data), asnumpy(x.grad)))
        np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-10, atol=1e-14, err_msg=name)


def test_gradcheck_runs_on_cupy_and_backward_refuses_a_host_gradient():
    # the seed gradients were NumPy arrays: backward on a CuPy graph failed, so gradcheck could not run
    import cupy

    rng = np.random.default_rng(3)
    x = ann.Tensor(cupy.asarray(rng.standard_normal((3, 4))), requires_grad=True)
    w = cupy.asarray(rng.standard_normal((4, 2)))
    assert ann.gradcheck(lambda t, m: F.gelu(t @ m).tanh(), [x, w])
    y = x * 2.0
    with pytest.raises(TypeError, match="NumPy array but this tensor is on the GPU"):
        y.backward(np.ones((3, 4)))
    y.backward(cupy.ones((3, 4)))
    assert isinstance(x.grad, cupy.ndarray)


def test_module_to_dtype_on_cupy_casts_parameters_and_buffers():
    import cupy

    model = nn.Sequential(nn.Linear(4, 3, seed=0), nn.LayerNorm(3))
    model.to(backend="cupy").to(dtype=np.float64)
    for value in model.state_dict().values():
        assert isinstance(value, cupy.ndarray) and value.dtype == np.float64
