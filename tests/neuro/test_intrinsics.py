"""neuro.intrinsics: the bit casts, maxnum and prefetch against their NumPy meaning."""

import numba
import numpy as np

from neuro.intrinsics import float32_from_bits, float64_bits, float64_from_bits, maxnum, prefetch


@numba.njit
def _roundtrip64(x, bits, back):
    for i in range(x.size):
        bits[i] = float64_bits(x[i])
        back[i] = float64_from_bits(bits[i])


@numba.njit
def _from32(bits, out):
    for i in range(bits.size):
        out[i] = float32_from_bits(np.int64(bits[i]))  # numba's int32 arithmetic is int64: the low word counts


@numba.njit
def _max_all(x):
    m = x[0]
    for i in range(x.size):
        prefetch(x, min(i + 8, x.size - 1))
        m = maxnum(m, x[i])
    return m


def test_bit_casts_equal_numpy_views():
    x = np.array([0.0, -0.0, 1.5, -3e-308, np.inf, np.nan, 2.0**-1074])
    bits, back = np.empty(x.size, np.int64), np.empty_like(x)
    _roundtrip64(x, bits, back)
    np.testing.assert_array_equal(bits, x.view(np.int64))
    np.testing.assert_array_equal(back.view(np.int64), x.view(np.int64))
    y = np.array([1.0, -2.5, np.inf, 1e-45], np.float32)
    out = np.empty_like(y)
    _from32(y.view(np.int32), out)
    np.testing.assert_array_equal(out.view(np.int32), y.view(np.int32))


def test_maxnum_ignores_nan_like_fmax():
    for dtype in (np.float32, np.float64):
        x = np.array([np.nan, -1.0, 3.0, np.nan, 2.0], dtype)
        assert _max_all(x) == np.fmax.reduce(x) == 3.0
        assert np.isnan(_max_all(np.array([np.nan, np.nan], dtype)))
