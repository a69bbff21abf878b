"""Attention (naive and flash) against torch.nn.functional.scaled_dot_product_attention."""

import numpy as np
import pytest
import torch

from ann.tensor import Tensor
from ann.attention import flash_attention, scaled_dot_product_attention
from ann.gradcheck import gradcheck

CASES = [(37, 53), (64, 64), (53, 20), (1, 9)]


def _torch_reference(q, k, v, mask, causal, grad_out):
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool)
    if causal:
        allowed = torch.tril(allowed)
    if mask is not None:
        allowed = allowed & torch.tensor(mask)
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=allowed)
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()


def _ours(fn, q, k, v, mask, causal, grad_out, **kw):
    tq, tk, tv = (Tensor(a, requires_grad=True) for a in (q, k, v))
    out = fn(tq, tk, tv, mask=mask, causal=causal, **kw)
    out.backward(grad_out)
    return out.numpy(), tq.grad, tk.grad, tv.grad


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lq,lk", CASES)
@pytest.mark.parametrize("with_mask", [False, True])
def test_naive_and_flash_match_torch(dtype, tol, causal, lq, lk, with_mask):
    rng = np.random.default_rng(lq * 100 + lk)
    q = rng.standard_normal((2, 3, lq, 8)).astype(dtype)
    k = rng.standard_normal((2, 3, lk, 8)).astype(dtype)
    v = rng.standard_normal((2, 3, lk, 5)).astype(dtype)
    mask = None
    if with_mask:
        mask = rng.random((2, 1, lq, lk)) > 0.3
        mask[0, 0, 0, :] = False  # a fully masked row
    grad_out = rng.standard_normal((2, 3, lq, 5)).astype(dtype)
    expected = _torch_reference(q, k, v, mask, causal, grad_out)
    for fn, kw in ((scaled_dot_product_attention, {}), (flash_attention, {"block_q": 16, "block_k": 8})):
        got = _ours(fn, q, k, v, mask, causal, grad_out, **kw)
        for name, g, e in zip(("out", "dq", "dk", "dv"), got, expected):
            assert np.all(np.isfinite(g)), f"{fn.__name__} {name} has non-finite values"
            np.testing.assert_allclose(g, e, atol=tol, rtol=tol, err_msg=f"{fn.__name__} {name}")


def test_fully_masked_rows_are_zero_with_zero_gradients():
    rng = np.random.default_rng(0)
    q, k, v = (Tensor(rng.standard_normal((4, 6)), requires_grad=True) for _ in range(3))
    mask = np.ones((4, 4), dtype=bool)
    mask[2] = False
    for fn in (scaled_dot_product_attention, flash_attention):
        for t in (q, k, v):
            t.grad = None
        out = fn(q, k, v, mask=mask)
        out.sum().backward()
        assert np.all(out.numpy()[2] == 0) and np.all(q.grad[2] == 0)


def test_flash_broadcasts_key_padding_mask_and_batch_of_k():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 4, 33, 16))
    k = rng.standard_normal((1, 4, 40, 16))  # broadcast over the first batch axis
    v = rng.standard_normal((1, 4, 40, 16))
    pad = np.arange(40)[None, None, None, :] < np.array([40, 25])[:, None, None, None]  # (2, 1, 1, 40)
    a = scaled_dot_product_attention(q, k, v, mask=pad)
    b = flash_attention(q, k, v, mask=pad, block_q=7, block_k=9)
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-12)


def test_flash_propagates_nan_like_the_naive_form():
    # the compiled tile kernel once gave a NaN score the weight 0 (finite output)
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, 40, 8)).astype(np.float32) for _ in range(3))
    k[0, 5, 0] = np.nan
    assert np.isnan(scaled_dot_product_attention(q, k, v).numpy()).all()
    assert np.isnan(flash_attention(q, k, v, block_q=16, block_k=16).numpy()).all()


def test_flash_gradcheck():
    rng = np.random.default_rng(2)
    inputs = [Tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 5, 3), (2, 7, 3), (2, 7, 2))]
    assert gradcheck(lambda q, k, v: flash_attention(q, k, v, causal=True, block_q=2, block_k=3), inputs)


def test_dropout_is_seeded_and_scaled():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((8, 4)) for _ in range(3))
    a = scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=7).numpy()
    b = scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=7).numpy()
    c = scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=8).numpy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)


def test_bad_input():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="share the feature size"):
        flash_attention(x, np.ones((3, 5)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="same length Lk"):
        scaled_dot_product_attention(x, x, np.ones((2, 4)))
    with pytest.raises(TypeError, match="mask must be a boolean"):
        flash_attention(x, x, x, mask=np.ones((3, 3)))
    with pytest.raises(ValueError, match="block_q must be an int >= 1"):
        flash_attention(x, x, x, block_q=0)


def test_online_softmax_tile_kernel_equals_its_reference():
    """The registered online-softmax tile update: compiled float32 pass vs the NumPy reference, masks included."""
    from neuro.kernels import call

    rng = np.random.default_rng(4)
    s = (4 * rng.standard_normal((2, 6, 37))).astype(np.float32)
    s[rng.random(s.shape) < 0.3] = -np.inf  # masked scores
    s[0, 1] = -np.inf  # a row with no visible key in this tile
    m = (2 * rng.standard_normal((2, 6))).astype(np.float32)
    m[1, 2] = -np.inf  # a row that has seen no key yet
    l = rng.random((2, 6)).astype(np.float32)
    l[1, 2] = 0.0
    m[0, 1], l[0, 1] = -np.inf, 0.0  # ... and still none after this tile
    results = []
    for impl in ("cpu", "reference"):
        st, mt, lt = s.copy(), m.copy(), l.copy()
        alpha = call("online_softmax_tile", st, mt, lt, impl=impl)
        results.append((st, mt, lt, alpha))
    for fast, ref in zip(*results):
        assert fast.dtype == np.float32 and np.isfinite(fast).all() == np.isfinite(ref).all()
        np.testing.assert_allclose(fast, ref, rtol=2e-6, atol=1e-7)
    st, mt, lt, alpha = results[0]
    assert (st[0, 1] == 0).all() and lt[0, 1] == 0 and mt[0, 1] == -np.inf
    # a whole row from m = -inf, l = 0 is the softmax numerator and its sum
    x = rng.standard_normal((3, 50)).astype(np.float32)
    p, mx, total = x.copy(), np.full(3, -np.inf, np.float32), np.zeros(3, np.float32)
    call("online_softmax_tile", p, mx, total, impl="cpu")
    np.testing.assert_allclose(p / total[:, None], torch.softmax(torch.tensor(x), -1).numpy(), rtol=1e-6, atol=1e-7)
