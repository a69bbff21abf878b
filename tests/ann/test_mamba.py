"""S4D layer and Mamba block against PyTorch re-implementations written here; causality; gradcheck; step == forward."""


import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from ann.gradcheck import gradcheck
from ann.nn.ssm import S4D, CausalDepthwiseConv1d, Mamba, MambaLM
from ann.tensor import Tensor

TOL = {np.float64: 1e-8, np.float32: 1e-4}


# ----------------------------------------------------------------------- S4D


def torch_s4d(u, p):
    """Zero-order-hold diagonal SSM, step by step: u (B, L, H)."""
    dt = torch.exp(p["log_dt"])[:, None]
    A = -torch.exp(p["A_log"])
    dA = torch.exp(dt * A)
    dB = (dA - 1) / A * p["B"]
    h = u.new_zeros(u.shape[0], *A.shape)
    ys = []
    for t in range(u.shape[1]):
        h = dA * h + dB * u[:, t, :, None]
        ys.append((h * p["C"]).sum(-1) + p["D"] * u[:, t])
    return torch.stack(ys, 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["real", "lin"])
def test_s4d_matches_torch_loop(dtype, kind, assert_matches_torch):
    rng = np.random.default_rng(0)
    layer = S4D(5, d_state=4, init=kind, dt_min=0.01, dt_max=0.5, dtype=dtype, seed=1)
    assert np.all(layer.A.numpy() < 0)
    u = rng.standard_normal((2, 11, 5)).astype(dtype)
    g = rng.standard_normal((2, 11, 5)).astype(dtype)
    assert_matches_torch(layer, torch_s4d, u, g, TOL[dtype])


def test_s4d_equals_its_convolution_kernel():
    rng = np.random.default_rng(1)
    layer = S4D(3, d_state=6, dtype=np.float64, seed=2)
    u = rng.standard_normal((2, 20, 3))
    K = layer.kernel(20)  # (H, L)
    conv = np.zeros_like(u)
    for t in range(20):
        conv[:, t] = np.einsum("bkh,hk->bh", u[:, t::-1][:, : t + 1], K[:, : t + 1])
    np.testing.assert_allclose(layer(u).numpy(), conv + layer.D.data * u, atol=1e-10)


# ---------------------------------------------------------------------- Mamba


def torch_mamba(u, p, d_inner, d_state, dt_rank, d_conv):
    """mamba_ssm's Mamba forward (reference path), with a sequential selective scan."""
    batch, length, _ = u.shape
    xz = (u @ p["in_proj.weight"].T).transpose(1, 2)
    x, z = xz[:, :d_inner], xz[:, d_inner:]
    x = TF.conv1d(x, p["conv1d.weight"], p["conv1d.bias"], padding=d_conv - 1, groups=d_inner)[..., :length]
    x = TF.silu(x)
    x_dbl = x.transpose(1, 2) @ p["x_proj.weight"].T
    dt, B, C = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
    dt = TF.softplus((dt @ p["dt_proj.weight"].T + p["dt_proj.bias"]).transpose(1, 2))  # (b, d, l)
    A = -torch.exp(p["A_log"])
    h = u.new_zeros(batch, d_inner, d_state)
    ys = []
    for t in range(length):
        h = torch.exp(dt[:, :, t, None] * A) * h + dt[:, :, t, None] * B[:, None, t] * x[:, :, t, None]
        ys.append((h * C[:, None, t]).sum(-1))
    y = torch.stack(ys, 2) + x * p["D"][:, None]
    y = y * TF.silu(z)
    return y.transpose(1, 2) @ p["out_proj.weight"].T


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mamba_block_matches_torch(dtype, assert_matches_torch):
    rng = np.random.default_rng(3)
    block = Mamba(8, d_state=4, d_conv=3, expand=2, dt_rank=2, dtype=dtype, seed=4)
    u = rng.standard_normal((2, 9, 8)).astype(dtype)
    g = rng.standard_normal((2, 9, 8)).astype(dtype)
    reference = lambda tu, tp: torch_mamba(tu, tp, block.d_inner, block.d_state, block.dt_rank, block.d_conv)  # noqa: E731
    out = assert_matches_torch(block, reference, u, g, TOL[dtype])
    assert out.dtype == dtype


def test_mamba_parameter_names_shapes_and_init():
    block = Mamba(32, d_state=16, d_conv=4, expand=2, seed=0)
    shapes = {n: p.shape for n, p in block.named_parameters()}
    assert shapes == {
        "in_proj.weight": (128, 32),
        "conv1d.weight": (64, 1, 4),
        "conv1d.bias": (64,),
        "x_proj.weight": (2 + 32, 64),
        "dt_proj.weight": (64, 2),
        "dt_proj.bias": (64,),
        "A_log": (64, 16),
        "D": (64,),
        "out_proj.weight": (32, 64),
    }
    np.testing.assert_allclose(block.A.numpy()[3], -np.arange(1, 17), rtol=1e-6)
    dt = np.log1p(np.exp(block.dt_proj.bias.data.astype(np.float64)))  # softplus
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)


def test_conv_matches_torch_and_is_causal():
    rng = np.random.default_rng(5)
    conv = CausalDepthwiseConv1d(6, 4, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 6, 10))
    ref = TF.conv1d(torch.tensor(x), torch.tensor(conv.weight.data), torch.tensor(conv.bias.data), padding=3, groups=6)[..., :10]
    np.testing.assert_allclose(conv(x).numpy(), ref.numpy(), atol=1e-12)


def test_mamba_output_at_t_ignores_later_inputs():
    rng = np.random.default_rng(6)
    block = Mamba(8, d_state=4, d_conv=4, dtype=np.float64, seed=1)
    u = rng.standard_normal((1, 12, 8))
    base = block(u).numpy()
    for t in (0, 5, 10):
        changed = u.copy()
        changed[:, t + 1 :] += rng.standard_normal(changed[:, t + 1 :].shape)
        out = block(changed).numpy()
        np.testing.assert_array_equal(out[:, : t + 1], base[:, : t + 1])
        assert not np.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_mamba_gradcheck_tiny():
    block = Mamba(3, d_state=2, d_conv=2, expand=1, dt_rank=1, dtype=np.float64, seed=2)
    u = np.random.default_rng(7).standard_normal((1, 4, 3))
    slots = [(m, name) for _, m in block.named_modules() for name in m._parameters]

    def fn(x, *ps):  # the module run with the given tensors in place of its parameters
        for (m, name), new in zip(slots, ps):
            m._parameters[name] = new
        return block(x)

    params = [Tensor(m._parameters[name].data.copy(), requires_grad=True) for m, name in slots]
    assert len(params) == 9
    gradcheck(fn, [Tensor(u, requires_grad=True)] + params)


def test_mamba_step_by_step_equals_forward():
    rng = np.random.default_rng(8)
    block = Mamba(8, d_state=4, d_conv=3, dtype=np.float64, seed=3)
    u = rng.standard_normal((2, 7, 8))
    full = block(u).numpy()
    state = None
    outs = []
    for t in range(7):
        o, state = block.step(u[:, t], state)
        outs.append(o.numpy())
    np.testing.assert_allclose(np.stack(outs, 1), full, atol=1e-12)


def test_mamba_lm_shapes_and_bad_input():
    lm = MambaLM(11, d_model=8, num_layers=2, d_state=4, seed=0)
    ids = np.random.default_rng(0).integers(0, 11, (3, 5))
    assert lm(ids).shape == (3, 5, 11)
    assert "layers.1.mixer.A_log" in dict(lm.named_parameters())
    with pytest.raises(ValueError, match="ids"):
        lm(ids[0])
    with pytest.raises(ValueError, match="d_model"):
        Mamba(8)(np.zeros((1, 3, 5)))
    with pytest.raises(ValueError, match="init"):
        S4D(4, init="inv")
