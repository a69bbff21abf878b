"""MultiheadAttention against torch.nn.MultiheadAttention with the same weights: outputs, weights, gradients."""

import numpy as np
import pytest
import torch

from ann.nn.attention import MultiheadAttention
from ann.tensor import Tensor

TOL = {np.float64: 1e-8, np.float32: 1e-4}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def _pair(E, H, dtype, seed=0, **kw):
    torch.manual_seed(seed)
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=TORCH_DTYPE[dtype], **kw)
    with torch.no_grad():  # non-zero biases, so that their gradients are exercised
        for name, p in ref.named_parameters():
            if "bias" in name:
                p.normal_(0.0, 0.3)
    ours = MultiheadAttention(E, H, batch_first=True, dtype=dtype, seed=1, **kw)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    return ours, ref


def _masks(rng, B, H, L, S, kind):
    """(ours, torch) versions of (attn_mask, key_padding_mask) for a mask kind."""
    if kind == "none":
        return (None, None), (None, None)
    if kind == "bool":
        attn = rng.random((L, S)) < 0.3
        attn[:, 0] = False  # every query keeps at least one key (PyTorch gives NaN otherwise)
        pad = np.zeros((B, S), dtype=bool)
        pad[0, -2:] = True
        return (attn, pad), (torch.tensor(attn), torch.tensor(pad))
    if kind == "float":
        attn = rng.standard_normal((B * H, L, S))
        attn[..., 1] = -np.inf
        pad = np.where(rng.random((B, S)) < 0.2, -np.inf, 0.5 * rng.standard_normal((B, S)))
        pad[:, 0] = 0.0
        return (attn, pad), (torch.tensor(attn), torch.tensor(pad))
    raise AssertionError(kind)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
@pytest.mark.parametrize("weights", ["average", "per_head", "none"])
def test_self_attention_matches_torch(dtype, mask_kind, weights):
    # need_weights=False takes the packed form (one projection GEMM, strided heads): same results
    B, L, E, H = 3, 7, 12, 3
    rng = np.random.default_rng(5)
    ours, ref = _pair(E, H, dtype)
    x = rng.standard_normal((B, L, E)).astype(dtype)
    g = rng.standard_normal((B, L, E)).astype(dtype)
    (am, kpm), (tam, tkpm) = _masks(rng, B, H, L, L, mask_kind)
    if tam is not None and tam.dtype.is_floating_point:
        tam, tkpm = tam.to(TORCH_DTYPE[dtype]), tkpm.to(TORCH_DTYPE[dtype])
        am, kpm = am.astype(dtype), kpm.astype(dtype)
    kw = dict(need_weights=weights != "none", average_attn_weights=weights == "average")

    tx = torch.tensor(x, requires_grad=True)
    t_out, t_w = ref(tx, tx, tx, key_padding_mask=tkpm, attn_mask=tam, **kw)
    (t_out * torch.tensor(g)).sum().backward()

    ox = Tensor(x, requires_grad=True)
    o_out, o_w = ours(ox, ox, ox, key_padding_mask=kpm, attn_mask=am, **kw)
    o_out.backward(g)

    tol = TOL[dtype]
    assert o_out.dtype == dtype
    np.testing.assert_allclose(o_out.numpy(), t_out.detach().numpy(), rtol=tol, atol=tol)
    if weights == "none":
        assert o_w is None and t_w is None
    else:
        np.testing.assert_allclose(o_w.numpy(), t_w.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=tol, atol=tol)
    t_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad, t_params[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("unbatched", [False, True])
def test_packed_form_equals_general_form_with_a_fully_masked_query(unbatched):
    # a query that sees no key gives 0 and passes no gradient, in both forms (PyTorch gives NaN there)
    m = MultiheadAttention(4, 2, batch_first=True, dtype=np.float64, seed=0)
    rng = np.random.default_rng(3)
    mask = rng.random((5, 5)) < 0.3
    mask[1] = True
    x = rng.standard_normal((5, 4) if unbatched else (2, 5, 4))
    g = rng.standard_normal(x.shape)
    results = []
    for need_weights in (True, False):
        m.zero_grad()
        xt = Tensor(x, requires_grad=True)
        out, _ = m(xt, xt, xt, attn_mask=mask, need_weights=need_weights, is_causal=True)
        out.backward(g)
        results.append((out.numpy(), xt.grad, {n: p.grad for n, p in m.named_parameters()}))
    (o1, g1, p1), (o2, g2, p2) = results
    np.testing.assert_allclose(o2, o1, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(o2[..., 1, :], 0.0)
    np.testing.assert_allclose(g2, g1, rtol=1e-12, atol=1e-12)
    for name in p1:
        np.testing.assert_allclose(p2[name], p1[name], rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("causal", [False, True])
def test_flash_option_equals_naive(causal):
    B, L, E, H = 2, 37, 16, 4
    rng = np.random.default_rng(11)
    naive = MultiheadAttention(E, H, batch_first=True, dtype=np.float64, seed=2)
    flash = MultiheadAttention(E, H, batch_first=True, dtype=np.float64, use_flash=True, block_q=8, block_k=16, seed=99)
    flash.load_state_dict(naive.state_dict())
    pad = np.zeros((B, L), dtype=bool)
    pad[1, -5:] = True
    x = rng.standard_normal((B, L, E))
    g = rng.standard_normal((B, L, E))
    results = []
    for m in (naive, flash):
        xt = Tensor(x, requires_grad=True)
        out, w = m(xt, key_padding_mask=pad, need_weights=False, is_causal=causal)
        assert w is None
        out.backward(g)
        results.append((out.numpy(), xt.grad, {n: p.grad for n, p in m.named_parameters()}))
    (o1, g1, p1), (o2, g2, p2) = results
    np.testing.assert_allclose(o2, o1, atol=1e-12)
    np.testing.assert_allclose(g2, g1, atol=1e-12)
    for name in p1:
        np.testing.assert_allclose(p2[name], p1[name], atol=1e-11, err_msg=name)


def test_fully_masked_query_gives_zeros_not_nan():
    m = MultiheadAttention(4, 2, batch_first=True, dtype=np.float64, seed=0)
    mask = np.zeros((3, 3), dtype=bool)
    mask[1] = True  # query 1 may see nothing
    out, w = m(np.ones((1, 3, 4)), attn_mask=mask)
    assert np.all(np.isfinite(out.numpy()))
    np.testing.assert_array_equal(w.numpy()[0, 1], 0.0)


def test_dropout_is_seeded_and_off_in_eval():
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    a = MultiheadAttention(8, 2, batch_first=True, dropout=0.5, seed=4)
    b = MultiheadAttention(8, 2, batch_first=True, dropout=0.5, seed=4)
    np.testing.assert_array_equal(a(x)[0].numpy(), b(x)[0].numpy())
    a.eval()
    ref = MultiheadAttention(8, 2, batch_first=True, seed=4)
    np.testing.assert_allclose(a(x)[0].numpy(), ref(x)[0].numpy(), atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        MultiheadAttention(10, 3)
    m = MultiheadAttention(8, 2, batch_first=True)
    with pytest.raises(ValueError, match="attn_mask"):
        m(np.zeros((1, 4, 8), np.float32), attn_mask=np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(np.zeros((1, 4, 8), np.float32), key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(TypeError, match="attn_mask"):
        m(np.zeros((1, 4, 8), np.float32), attn_mask=np.zeros((4, 4), np.int64))
