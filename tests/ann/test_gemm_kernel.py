"""The packed float32 product of :mod:`ann.gemm_kernel` against NumPy."""

import numpy as np
import pytest

from ann.gemm_kernel import pack_rows, product, product_reference


def test_pack_rows_layout():
    w = np.arange(30, dtype=np.float32).reshape(10, 3)
    wp = pack_rows(w)
    assert wp.shape == (2, 3, 8) and wp.flags.c_contiguous
    np.testing.assert_array_equal(wp[1, :, 1], w[9])
    np.testing.assert_array_equal(wp[1, :, 2:], 0)  # padding rows


@pytest.mark.parametrize("m, k, n", [(8, 1, 8), (13, 7, 16), (148, 48, 8), (64, 33, 24), (40, 20, 32), (24, 64, 72)])
def test_product_equals_reference(m, k, n):
    """Every tile width (32, 16 and 8 columns) and padded rows: ``(W s + add) * mul``."""
    rng = np.random.default_rng(m * k + n)
    wp = pack_rows(rng.standard_normal((m, k)).astype(np.float32))
    rows = wp.shape[0] * 8
    s = rng.standard_normal((k, n)).astype(np.float32)
    add, mul = (rng.standard_normal(rows).astype(np.float32) for _ in range(2))
    out = np.full((rows, n), np.nan, np.float32)
    assert product(wp, s, out, add, mul) is out
    expected = product_reference(wp, s, add, mul)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.sqrt(k))
    np.testing.assert_allclose(out[m:], (add[m:, None] * mul[m:, None]).repeat(n, 1), rtol=1e-6)  # zero rows


def test_product_rejects_bad_shapes():
    wp = pack_rows(np.ones((8, 4), np.float32))
    ones = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="multiple of 8"):
        product(wp, np.ones((4, 12), np.float32), np.empty((8, 12), np.float32), ones, ones)
    with pytest.raises(ValueError, match="out must be"):
        product(wp, np.ones((4, 8), np.float32), np.empty((16, 8), np.float32), ones, ones)
    with pytest.raises(TypeError, match="C-contiguous float32"):
        product(wp, np.ones((8, 4), np.float32).T, np.empty((8, 8), np.float32), ones, ones)
    with pytest.raises(ValueError, match="pack_rows"):
        product(np.ones((8, 4), np.float32), np.ones((4, 8), np.float32), np.empty((8, 8), np.float32), ones, ones)
    with pytest.raises(ValueError, match="2-D"):
        pack_rows(np.ones(4))
