"""neuro.exp64: the vectorizable float64 exp against NumPy's, numba against the NumPy form, and that it vectorizes."""

import numba
import numpy as np
import pytest

from neuro.exp64 import X_MAX, X_MIN, exp, exp_array


@numba.njit
def _exp_loop(x, out):
    for i in range(x.size):
        out[i] = exp(x[i])


def _inputs():
    rng = np.random.default_rng(0)
    return np.concatenate([
        np.linspace(X_MIN, X_MAX, 200_001), rng.uniform(-5.0, 1.0, 100_000), rng.normal(0.0, 1e-6, 1000),
        np.arange(-700, 700) * np.log(2.0),  # the rounding boundaries of k
        (np.arange(-700, 700) + 0.5) * np.log(2.0), [0.0, -0.0, 1e-300, -1e-300, X_MIN, X_MAX],
    ])


def test_within_one_ulp_of_numpy():
    x = _inputs()
    y, ref = exp_array(x), np.exp(x)
    ulps = np.abs(y - ref) / np.spacing(ref)
    assert ulps.max() <= 1.0
    assert np.mean(y == ref) > 0.85  # mostly correctly rounded, not merely close
    assert exp_array(0.0) == 1.0 and exp_array(np.log(2.0) * 10) == pytest.approx(1024.0, rel=1e-15)


def test_numba_form_is_bit_identical_to_the_numpy_form():
    x = np.concatenate([_inputs(), [np.nan, np.inf, -np.inf, 1e6, -1e6]])
    out = np.empty_like(x)
    _exp_loop(x, out)
    np.testing.assert_array_equal(out, exp_array(x))


def test_clamps_outside_the_normal_range_and_keeps_nan():
    y = exp_array(np.array([-1e6, -np.inf, 1e6, np.inf, np.nan]))
    assert y[0] == y[1] == exp_array(X_MIN) and y[2] == y[3] == exp_array(X_MAX)
    assert exp_array(X_MIN) == pytest.approx(np.exp(X_MIN), rel=1e-15)
    assert np.isnan(y[4])
    assert exp_array(np.zeros((2, 3))).shape == (2, 3)


def test_a_loop_around_it_vectorizes():
    """The point of the module: numba's loop compiles to vector instructions (libm's exp keeps it scalar)."""
    x = np.linspace(-3.0, 0.0, 64)
    _exp_loop(x, np.empty_like(x))
    ir = next(iter(_exp_loop.inspect_llvm().values()))
    assert "x double>" in ir
    assert "@llvm.exp" not in ir and "@exp(" not in ir
