"""RWKV-4 WKV: recurrent == parallel == the definition (written in PyTorch), values and gradients."""

import numpy as np
import pytest
import torch

from ann.gradcheck import gradcheck
from ann.tensor import Tensor
from ann.wkv import wkv_parallel, wkv_recurrent


def _torch_definition(w, u, k, v):
    """wkv[t] = (sum_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) / (same without v), directly."""
    steps = k.shape[1]
    outs = []
    for t in range(steps):
        num = torch.exp(u + k[:, t]) * v[:, t]
        den = torch.exp(u + k[:, t])
        for i in range(t):
            e = torch.exp((t - 1 - i) * w + k[:, i])
            num, den = num + e * v[:, i], den + e
        outs.append(num / den)
    return torch.stack(outs, dim=1)


def _inputs(rng, batch=2, steps=7, channels=3, dtype=np.float64, key_scale=1.0):
    w = -np.exp(rng.standard_normal(channels)).astype(dtype)
    u = rng.standard_normal(channels).astype(dtype)
    k = (key_scale * rng.standard_normal((batch, steps, channels))).astype(dtype)
    v = rng.standard_normal((batch, steps, channels)).astype(dtype)
    return w, u, k, v


@pytest.mark.parametrize("form", [wkv_recurrent, wkv_parallel])
def test_values_and_gradients_equal_definition(form):
    rng = np.random.default_rng(0)
    arrays = _inputs(rng)
    grad_out = rng.standard_normal(arrays[2].shape)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ref = _torch_definition(*ts)
    ref.backward(torch.tensor(grad_out))
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    out = form(*ours)
    out.backward(grad_out)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    for o, t in zip(ours, ts):
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_recurrent_equals_parallel_and_state_continues():
    rng = np.random.default_rng(1)
    w, u, k, v = _inputs(rng, steps=12)
    full = wkv_recurrent(w, u, k, v).numpy()
    np.testing.assert_allclose(wkv_parallel(w, u, k, v).numpy(), full, rtol=1e-12, atol=1e-12)
    first, state = wkv_recurrent(w, u, k[:, :5], v[:, :5], return_state=True)
    second = wkv_recurrent(w, u, k[:, 5:], v[:, 5:], state=state)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()], axis=1), full, rtol=1e-12)


def test_large_keys_do_not_overflow_float32():
    rng = np.random.default_rng(2)
    w, u, k, v = _inputs(rng, dtype=np.float32)
    k = np.full_like(k, 80.0)
    k[:, ::2] += 5.0  # e^85 overflows float32 if computed naively
    k[:, 3] = 0.0
    r = wkv_recurrent(w, u, k, v).numpy()
    p = wkv_parallel(w, u, k, v).numpy()
    assert r.dtype == np.float32 and np.all(np.isfinite(r)) and np.all(np.isfinite(p))
    exact = wkv_parallel(*(a.astype(np.float64) for a in (w, u, k, v))).numpy()
    np.testing.assert_allclose(r, exact, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p, exact, rtol=1e-4, atol=1e-5)


def test_gradcheck_both_forms():
    rng = np.random.default_rng(3)
    arrays = _inputs(rng, batch=1, steps=4, channels=2)
    for form in (wkv_recurrent, wkv_parallel):
        assert gradcheck(form, [Tensor(a, requires_grad=True) for a in arrays])


def test_bad_shapes():
    rng = np.random.default_rng(4)
    w, u, k, v = _inputs(rng)
    with pytest.raises(ValueError, match="k and v must both be"):
        wkv_parallel(w, u, k, v[:, :3])
    with pytest.raises(ValueError, match="w and u must be"):
        wkv_recurrent(w[:2], u, k, v)
