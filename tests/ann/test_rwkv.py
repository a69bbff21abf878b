"""RWKVBlock: parallel (training) form == recurrent (inference) form; against a PyTorch RWKV-4 block written here."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from ann.nn.rwkv import RWKVLM, RWKVBlock
from ann.tensor import Tensor

TOL = {np.float64: 1e-8, np.float32: 1e-4}


def torch_wkv(w, u, k, v):
    """The WKV definition summed directly (fine for the small keys used here)."""
    T = k.shape[1]
    outs = []
    for t in range(T):
        num = torch.exp(u + k[:, t]) * v[:, t]
        den = torch.exp(u + k[:, t])
        for i in range(t):
            e = torch.exp((t - 1 - i) * w + k[:, i])
            num = num + e * v[:, i]
            den = den + e
        outs.append(num / den)
    return torch.stack(outs, 1)


def torch_rwkv_block(x, p):
    """RWKV-4's Block forward (RWKV-LM/RWKV-v4/src/model.py), written with PyTorch ops."""
    C = x.shape[-1]

    def shift(h):
        return TF.pad(h, (0, 0, 1, -1))

    def ln(h, name):
        return TF.layer_norm(h, (C,), p[f"{name}.weight"], p[f"{name}.bias"])

    h = ln(x, "ln1")
    hh = shift(h)
    mix = lambda name: h * p[f"att.time_mix_{name}"] + hh * (1 - p[f"att.time_mix_{name}"])
    k = mix("k") @ p["att.key.weight"].T
    v = mix("v") @ p["att.value.weight"].T
    r = mix("r") @ p["att.receptance.weight"].T
    wkv = torch_wkv(-torch.exp(p["att.time_decay"]), p["att.time_first"], k, v)
    x = x + (torch.sigmoid(r) * wkv) @ p["att.output.weight"].T
    h = ln(x, "ln2")
    hh = shift(h)
    xk = h * p["ffn.time_mix_k"] + hh * (1 - p["ffn.time_mix_k"])
    xr = h * p["ffn.time_mix_r"] + hh * (1 - p["ffn.time_mix_r"])
    kk = torch.square(torch.relu(xk @ p["ffn.key.weight"].T))
    return x + torch.sigmoid(xr @ p["ffn.receptance.weight"].T) * (kk @ p["ffn.value.weight"].T)


def _perturbed(block, rng):
    """Randomize the LayerNorm affine parameters, so that their gradients are checked meaningfully."""
    for name, p in block.named_parameters():
        if name.startswith("ln"):
            p.data += 0.2 * rng.standard_normal(p.shape).astype(p.dtype)
    return block


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_block_matches_torch(dtype, assert_matches_torch):
    rng = np.random.default_rng(0)
    block = _perturbed(RWKVBlock(8, layer_id=1, n_layer=3, dtype=dtype, seed=1), rng)
    x = rng.standard_normal((2, 7, 8)).astype(dtype)
    g = rng.standard_normal((2, 7, 8)).astype(dtype)
    assert_matches_torch(block, torch_rwkv_block, x, g, TOL[dtype])


def test_recurrent_inference_equals_parallel_training_form():
    rng = np.random.default_rng(2)
    block = RWKVBlock(6, layer_id=0, n_layer=2, dtype=np.float64, seed=3)
    x = rng.standard_normal((3, 10, 6))
    parallel = block(x).numpy()

    whole, _ = block(x, return_state=True)  # recurrent WKV over the whole sequence
    np.testing.assert_allclose(whole.numpy(), parallel, atol=1e-12)

    state, steps = None, []
    for t in range(10):  # token by token
        out, state = block.step(x[:, t], state)
        steps.append(out.numpy())
    np.testing.assert_allclose(np.stack(steps, 1), parallel, atol=1e-12)

    first, state = block(x[:, :4], return_state=True)  # two chunks
    second, _ = block(x[:, 4:], state, return_state=True)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()], 1), parallel, atol=1e-12)


def test_recurrent_and_parallel_gradients_agree():
    rng = np.random.default_rng(4)
    block = RWKVBlock(4, dtype=np.float64, seed=5)
    x = rng.standard_normal((2, 6, 4))
    g = rng.standard_normal((2, 6, 4))
    grads = []
    for recurrent in (False, True):
        block.zero_grad()
        xt = Tensor(x, requires_grad=True)
        out = block(xt, return_state=True)[0] if recurrent else block(xt)
        out.backward(g)
        grads.append([xt.grad] + [p.grad.copy() for p in block.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_large_keys_do_not_overflow_in_float32():
    block = RWKVBlock(4, dtype=np.float32, seed=0)
    block.att.key.weight.data[...] = 60.0 * np.eye(4, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((1, 8, 4)).astype(np.float32) * 3
    h = block.ln1(x).numpy()
    xk = h * block.att.time_mix_k.data + np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], 1) * (1 - block.att.time_mix_k.data)
    assert np.abs(60.0 * xk).max() > 80  # exp(k) alone would overflow float32 at k > 88.7
    par = block(x).numpy()
    rec = block(x, return_state=True)[0].numpy()
    assert np.all(np.isfinite(par)) and np.all(np.isfinite(rec))
    np.testing.assert_allclose(rec, par, rtol=1e-4, atol=1e-4)


def test_initialization_follows_rwkv4():
    C, n_layer = 8, 4
    b = RWKVBlock(C, layer_id=2, n_layer=n_layer, seed=0)
    r01, r10 = 2 / 3, 1 - 2 / 4
    h = np.arange(C)
    np.testing.assert_allclose(b.att.time_decay.numpy(), -5 + 8 * (h / (C - 1)) ** (0.7 + 1.3 * r01), rtol=1e-6)
    np.testing.assert_allclose(b.att.time_first.numpy(), math.log(0.3) + 0.5 * ((h + 1) % 3 - 1), rtol=1e-6)
    np.testing.assert_allclose(b.att.time_mix_v.numpy().ravel(), (h / C) ** r10 + 0.3 * r01, rtol=1e-6)
    assert b.ffn.key.weight.shape == (4 * C, C) and b.ffn.value.weight.shape == (C, 4 * C)
    with pytest.raises(ValueError, match="layer_id"):
        RWKVBlock(C, layer_id=4, n_layer=4)


def test_rwkv_lm_recurrent_generation_matches_parallel():
    lm = RWKVLM(13, d_model=8, num_layers=2, dtype=np.float64, seed=0)
    ids = np.random.default_rng(1).integers(0, 13, (2, 9))
    full = lm(ids).numpy()
    logits, state = lm(ids[:, :5], return_state=True)
    rest, _ = lm(ids[:, 5:], state)
    np.testing.assert_allclose(np.concatenate([logits.numpy(), rest.numpy()], 1), full, atol=1e-12)
    assert full.shape == (2, 9, 13)
