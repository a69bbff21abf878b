"""``gather_matmul``: every implementation equals the dense product ``h @ W_t`` (float64 oracle)."""

import importlib

import numpy as np
import pytest

from neuro import kernels
from neuro.kernels import call
gm_module = importlib.import_module("neuro.kernels.gather_matmul")  # the module (the package exports the function)

SPARSITIES = [0.0, 0.5, 0.9, 0.99, 1.0]


def _inputs(shape, d, sparsity, dtype, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(shape)
    h[rng.random(shape) < sparsity] = 0.0
    if sparsity == 0.0:
        h[h == 0] = 1.0  # all nonzero
    w = rng.standard_normal((shape[-1], d))
    return h.astype(dtype), w.astype(dtype)


def _assert_equals_dense(out, h, w):
    """Equal to the float64 dense product within 1e-5 of the scale of the terms (float32 rounding)."""
    exact = h.astype(np.float64) @ w.astype(np.float64)
    scale = np.abs(h).astype(np.float64) @ np.abs(w).astype(np.float64) + 1e-30
    tol = 1e-5 if h.dtype == np.float32 else 1e-12
    assert out.shape == exact.shape and out.dtype == h.dtype
    assert np.all(np.abs(out - exact) <= tol * scale), np.max(np.abs(out - exact) / scale)


@pytest.mark.parametrize("impl", ["reference", "cpu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", [(300,), (1, 300), (5, 300)])
def test_equals_dense_product(impl, dtype, sparsity, shape):
    h, w = _inputs(shape, 70, sparsity, dtype)
    out = call("gather_matmul", h, w, impl=impl)
    _assert_equals_dense(out, h, w)
    if sparsity == 1.0:
        assert not out.any()


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_parallel_path_and_non_contiguous_inputs(impl, monkeypatch):
    monkeypatch.setattr(gm_module, "SERIAL_WORK", 0)  # force the threaded path on small inputs
    h, w = _inputs((3, 2 * 257), 2 * 45, 0.7, np.float32, seed=1)
    h_view, w_view = h[:, ::2], w[::2, ::2]  # strided views
    assert not h_view.flags.c_contiguous and not w_view.flags.c_contiguous
    out = call("gather_matmul", h_view, w_view, impl=impl)
    _assert_equals_dense(out, np.ascontiguousarray(h_view), np.ascontiguousarray(w_view))
    w_t = np.asfortranarray(w)  # W_t as a transposed (out, in) weight is Fortran-ordered
    _assert_equals_dense(call("gather_matmul", h[0], w_t, impl=impl), h[0], w)


def test_only_active_rows_are_read():
    h, w = _inputs((2, 50), 8, 0.8, np.float64)
    inactive = ~(h != 0).any(axis=0)
    w_poisoned = w.copy()
    w_poisoned[inactive] = np.nan  # never read, so no NaN reaches the output
    for impl in ("reference", "cpu"):
        out = call("gather_matmul", h, w_poisoned, impl=impl)
        assert np.isfinite(out).all()
        _assert_equals_dense(out, h, w)


def test_cpu_equals_reference_on_trained_like_activations():
    rng = np.random.default_rng(3)
    h = np.maximum(rng.standard_normal((8, 512)) - 1.5, 0).astype(np.float32)  # ReLU of shifted Gaussians
    w = rng.standard_normal((512, 96)).astype(np.float32)
    np.testing.assert_allclose(call("gather_matmul", h, w, impl="cpu"), call("gather_matmul", h, w, impl="reference"),
                               rtol=1e-5, atol=1e-5)


def test_empty_batch_and_registry():
    h, w = _inputs((0, 10), 4, 0.5, np.float32)
    assert kernels.gather_matmul(h, w).shape == (0, 4)
    info = kernels.available()["gather_matmul"]
    assert info["reference"] and info["cpu"] and info["cuda"]


def test_bad_input():
    w = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"h must have shape \(F,\) or \(B, F\)"):
        kernels.gather_matmul(np.ones(5, np.float32), w)
    with pytest.raises(ValueError, match="h must have shape"):
        kernels.gather_matmul(np.ones((2, 2, 4), np.float32), w)
    with pytest.raises(ValueError, match=r"W_t must have shape \(F, D\)"):
        kernels.gather_matmul(np.ones(4, np.float32), np.ones(4, np.float32))
    with pytest.raises(TypeError, match="same dtype"):
        kernels.gather_matmul(np.ones(4), w)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.gather_matmul(np.ones(4, np.int64), w.astype(np.int64))
    with pytest.raises(TypeError, match="ndarray"):
        kernels.gather_matmul([1.0, 0, 0, 0], w)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4096,), (8, 4096)])
def test_cuda_equals_dense(dtype, shape):
    import cupy

    h, w = _inputs(shape, 1000, 0.9, dtype, seed=4)
    out = kernels.gather_matmul(cupy.asarray(h), cupy.asarray(w))
    assert isinstance(out, cupy.ndarray) and out.dtype == dtype
    _assert_equals_dense(out.get(), h, w)
    zero = kernels.gather_matmul(cupy.zeros_like(cupy.asarray(h)), cupy.asarray(w))
    assert not zero.get().any()
