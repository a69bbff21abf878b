"""Pre-norm Transformer block against PyTorch (TransformerEncoderLayer and a hand-written gated block); positions; LM."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from ann.nn.transformer import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
    TransformerLM,
    sinusoidal_table,
)
from ann.tensor import Tensor
from neuro.backend import asnumpy, gpu_available

TOL = {np.float64: 1e-8, np.float32: 1e-4}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def _randomize_norms(module, rng):
    for name, p in module.named_parameters():
        if name.startswith("norm"):
            p.data += 0.2 * rng.standard_normal(p.shape).astype(p.dtype)


def _compare(ours, t_out, ox, tx, tparams, tol):
    np.testing.assert_allclose(ours.numpy(), t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=tol, atol=tol)
    for name, tp in tparams.items():
        assert tp.grad is not None, name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("causal", [False, True])
def test_block_matches_torch_encoder_layer_norm_first(dtype, activation, causal):
    E, H, FF, B, T = 16, 4, 24, 2, 7
    rng = np.random.default_rng(0)
    block = TransformerBlock(E, H, FF, activation=activation, dtype=dtype, seed=1)
    _randomize_norms(block, rng)
    block.self_attn.in_proj_bias.data += 0.1 * rng.standard_normal(3 * E).astype(dtype)
    ref = torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, activation=activation, batch_first=True, norm_first=True, dtype=TORCH_DTYPE[dtype])
    ref.load_state_dict({k: torch.tensor(v.copy()) for k, v in block.state_dict().items()})
    pad = np.zeros((B, T), dtype=bool)
    pad[1, -2:] = True
    x = rng.standard_normal((B, T, E)).astype(dtype)
    g = rng.standard_normal((B, T, E)).astype(dtype)

    tx = torch.tensor(x, requires_grad=True)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None  # True = masked
    t_out = ref(tx, src_mask=mask, src_key_padding_mask=torch.tensor(pad), is_causal=causal)
    (t_out * torch.tensor(g)).sum().backward()

    ox = Tensor(x, requires_grad=True)
    out = block(ox, key_padding_mask=pad, is_causal=causal)
    out.backward(g)
    tol = TOL[dtype]
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=tol, atol=tol)
    t_params = dict(ref.named_parameters())
    assert set(t_params) == {n for n, _ in block.named_parameters()}
    for name, p in block.named_parameters():
        np.testing.assert_allclose(p.grad, t_params[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name)


def torch_prenorm_block(x, p, H, gate, norm, causal):
    """A pre-norm block written by hand: x + MHA(norm1(x)); x + W2 (a * gate(b)) with [a, b] = W1 norm2(x)."""
    B, T, E = x.shape
    d = E // H

    def normalize(h, name):
        if norm == "layernorm":
            return TF.layer_norm(h, (E,), p[f"{name}.weight"], p[f"{name}.bias"])
        return TF.rms_norm(h, (E,), p[f"{name}.weight"], eps=1e-5)

    h = normalize(x, "norm1")
    qkv = h @ p["self_attn.in_proj_weight"].T + p["self_attn.in_proj_bias"]
    q, k, v = (t.reshape(B, T, H, d).transpose(1, 2) for t in qkv.split(E, dim=-1))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if causal:
        scores = scores.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), -math.inf)
    att = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, T, E)
    x = x + att @ p["self_attn.out_proj.weight"].T + p["self_attn.out_proj.bias"]
    h = normalize(x, "norm2") @ p["linear1.weight"].T + p["linear1.bias"]
    a, b = h.chunk(2, dim=-1)
    return x + (a * gate(b)) @ p["linear2.weight"].T + p["linear2.bias"]


GATES = {"swiglu": TF.silu, "geglu": TF.gelu, "reglu": TF.relu, "glu": torch.sigmoid}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["swiglu", "geglu", "reglu", "glu"])
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_gated_block_matches_handwritten_torch(dtype, activation, norm, assert_matches_torch):
    E, H, FF, B, T = 12, 3, 10, 2, 6
    rng = np.random.default_rng(1)
    block = TransformerBlock(E, H, FF, activation=activation, norm=norm, causal=True, dtype=dtype, seed=2)
    _randomize_norms(block, rng)
    assert block.linear1.weight.shape == (2 * FF, E) and block.linear2.weight.shape == (E, FF)
    x = rng.standard_normal((B, T, E)).astype(dtype)
    g = rng.standard_normal((B, T, E)).astype(dtype)
    reference = lambda tx, tp: torch_prenorm_block(tx, tp, H, GATES[activation], norm, causal=True)  # noqa: E731
    assert_matches_torch(block, reference, x, g, TOL[dtype])


def test_sinusoidal_table_matches_formula():
    T, d = 50, 16
    table = sinusoidal_table(T, d, np.float64)
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    ref = torch.zeros(T, d, dtype=torch.float64)
    ref[:, 0::2] = torch.sin(pos * div)
    ref[:, 1::2] = torch.cos(pos * div)
    np.testing.assert_allclose(table, ref.numpy(), atol=1e-12)
    enc = SinusoidalPositionalEncoding(d, dtype=np.float64)
    x = np.zeros((2, 10, d))
    np.testing.assert_allclose(enc(x, offset=5).numpy()[1], table[5:15], atol=1e-12)
    odd = sinusoidal_table(7, 5)  # odd width works
    assert odd.shape == (7, 5) and odd.dtype == np.float32


def test_learned_positions_add_rows_and_get_gradients():
    enc = LearnedPositionalEncoding(8, 4, dtype=np.float64, seed=0)
    x = Tensor(np.zeros((3, 5, 4)), requires_grad=True)
    out = enc(x)
    np.testing.assert_allclose(out.numpy()[2], enc.embedding.weight.data[:5])
    out.sum().backward()
    np.testing.assert_allclose(enc.embedding.weight.grad[:5], 3.0)
    np.testing.assert_allclose(enc.embedding.weight.grad[5:], 0.0)
    with pytest.raises(ValueError, match="max_len"):
        enc(np.zeros((1, 9, 4)))


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_lm_is_causal_and_flash_matches_naive(positional):
    rng = np.random.default_rng(3)
    lm = TransformerLM(20, d_model=16, nhead=2, num_layers=2, max_len=32, positional=positional, activation="swiglu", dtype=np.float64, seed=4)
    ids = rng.integers(0, 20, (2, 12))
    logits = lm(ids).numpy()
    assert logits.shape == (2, 12, 20)
    changed = ids.copy()
    changed[:, 7:] = (changed[:, 7:] + 1) % 20
    other = lm(changed).numpy()
    np.testing.assert_array_equal(other[:, :7], logits[:, :7])
    assert not np.allclose(other[:, 7:], logits[:, 7:])
    flash = TransformerLM(20, d_model=16, nhead=2, num_layers=2, max_len=32, positional=positional, activation="swiglu", use_flash=True, dtype=np.float64, seed=99)
    flash.load_state_dict(lm.state_dict())
    np.testing.assert_allclose(flash(ids).numpy(), logits, atol=1e-11)


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        TransformerBlock(8, 2, activation="softmax")
    with pytest.raises(ValueError, match="unknown activation"):
        TransformerBlock(8, 2, activation="nope")
    with pytest.raises(ValueError, match="norm"):
        TransformerBlock(8, 2, norm="batchnorm")
    with pytest.raises(ValueError, match="positional"):
        TransformerLM(10, positional="rotary")
    with pytest.raises(ValueError, match="max_len"):
        TransformerLM(10, d_model=8, nhead=2, max_len=4)(np.zeros((1, 5), dtype=np.int64))


# ------------------------------------------------------------------------- GPU


def _gpu_cases():
    from ann.nn.attention import MultiheadAttention
    from ann.nn.rwkv import RWKVBlock
    from ann.nn.ssm import S4D, Mamba

    floats = np.random.default_rng(0).standard_normal((2, 9, 8))
    ids = np.random.default_rng(1).integers(0, 11, (2, 9))
    return {
        "mha_flash": (lambda: MultiheadAttention(8, 2, batch_first=True, use_flash=True, block_q=4, block_k=4, dtype=np.float64, seed=0),
                      lambda m, x: m(x, need_weights=False, is_causal=True)[0], floats),
        "transformer_lm": (lambda: TransformerLM(11, d_model=8, nhead=2, max_len=16, activation="swiglu", dtype=np.float64, seed=0),
                           lambda m, x: m(x), ids),
        "s4d": (lambda: S4D(8, d_state=4, dtype=np.float64, seed=0), lambda m, x: m(x), floats),
        "mamba": (lambda: Mamba(8, d_state=4, dtype=np.float64, seed=0), lambda m, x: m(x), floats),
        "rwkv_recurrent": (lambda: RWKVBlock(8, dtype=np.float64, seed=0), lambda m, x: m(x, return_state=True)[0], floats),
    }


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("name", ["mha_flash", "transformer_lm", "s4d", "mamba", "rwkv_recurrent"])
def test_sequence_modules_on_gpu_match_cpu(name):
    import cupy as cp

    build, run, x = _gpu_cases()[name]
    results = []
    for backend in ("numpy", "cupy"):
        m = build()
        if backend == "cupy":
            m.to(backend="cupy")
        xin = cp.asarray(x) if backend == "cupy" else x
        out = run(m, xin if x.dtype.kind in "iu" else Tensor(xin))
        assert (backend == "cupy") == isinstance(out.data, cp.ndarray)
        (out * out).sum().backward()
        results.append((out.numpy(), {n: asnumpy(p.grad) for n, p in m.named_parameters()}))
    (cpu, cpu_grads), (gpu, gpu_grads) = results
    np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-9)
    for n in cpu_grads:
        np.testing.assert_allclose(gpu_grads[n], cpu_grads[n], rtol=1e-8, atol=1e-8, err_msg=n)
