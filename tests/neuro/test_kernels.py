import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neuro import backend, kernels
from neuro.kernels import call, register


def test_available_reports_sparse_relu():
    info = kernels.available()["sparse_relu"]
    assert info["reference"] and info["cpu"] and info["cuda"]
    assert info["cuda_usable"] == backend.gpu_available()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (1,), (7, 5), (3, 100_003)])
@pytest.mark.parametrize("threshold", [0.0, 0.5, -0.25])
def test_sparse_relu_fast_path_equals_reference(dtype, shape, threshold):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    if x.size > 4:
        x.flat[:4] = [0.0, -0.0, np.nan, np.inf]
    y_ref, n_ref = call("sparse_relu", x, threshold=threshold, impl="reference")
    y_cpu, n_cpu = call("sparse_relu", x, threshold=threshold, impl="cpu")
    assert y_cpu.dtype == x.dtype and y_cpu.shape == x.shape
    np.testing.assert_array_equal(y_cpu, y_ref)  # NaN == NaN here
    assert n_cpu == n_ref


def test_sparse_relu_against_plain_definition():
    x = np.array([-2.0, -0.0, 0.0, 0.1, 3.0, np.nan, -np.inf, np.inf])
    y, nnz = kernels.sparse_relu(x)
    expected = np.array([0.0, 0.0, 0.0, 0.1, 3.0, np.nan, 0.0, np.inf])
    np.testing.assert_array_equal(y, expected)
    assert nnz == 4  # 0.1, 3, nan, inf
    y, nnz = kernels.sparse_relu(x, threshold=-1.0)  # zeros pass but are not counted
    np.testing.assert_array_equal(y, [0.0, -0.0, 0.0, 0.1, 3.0, np.nan, 0.0, np.inf])
    assert nnz == 4


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=40)), st.floats(-2, 2))
def test_sparse_relu_property(x, threshold):
    y, nnz = call("sparse_relu", x, threshold=threshold, impl="cpu")
    y_ref, n_ref = call("sparse_relu", x, threshold=threshold, impl="reference")
    np.testing.assert_array_equal(y, y_ref)
    assert nnz == n_ref == int(np.count_nonzero(y))


def test_sparse_relu_bad_input():
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        kernels.sparse_relu(np.arange(3))
    with pytest.raises(TypeError, match="x must be a numpy or cupy ndarray"):
        kernels.sparse_relu([1.0, -1.0])
    with pytest.raises(TypeError, match="threshold must be a real scalar"):
        kernels.sparse_relu(np.ones(3), threshold=np.ones(2))


def test_dispatch_errors():
    x = np.ones(3)
    with pytest.raises(KeyError, match="unknown kernel 'nope'"):
        call("nope", x)
    with pytest.raises(ValueError, match="impl must be one of"):
        call("sparse_relu", x, impl="fortran")
    with pytest.raises(ValueError, match="no CUDA kernel for these arrays"):
        call("sparse_relu", x, impl="cuda")


def test_register_validates_and_dispatches(tmp_path):
    seen = []
    register("_test_double", reference=lambda a: seen.append("ref") or 2 * a)
    assert call("_test_double", np.ones(2)).tolist() == [2.0, 2.0] and seen == ["ref"]
    with pytest.raises(ValueError, match="already registered"):
        register("_test_double", reference=lambda a: a)
    with pytest.raises(ValueError, match="does not exist"):
        register("_test_missing_cu", reference=lambda a: a, cuda_source=tmp_path / "none.cu", cuda_function="f", cuda_launch=lambda k, a: a)
    src = tmp_path / "k.cu"
    src.write_text("")
    with pytest.raises(ValueError, match="needs cuda_function"):
        register("_test_no_fn", reference=lambda a: a, cuda_source=src)
    with pytest.raises(TypeError, match="cpu must be callable"):
        register("_test_bad_cpu", reference=lambda a: a, cpu=3)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sparse_relu_cuda_equals_reference(dtype):
    import cupy

    x = cupy.asarray(np.random.default_rng(1).standard_normal(1_000_003).astype(dtype))
    y, nnz = kernels.sparse_relu(x)
    y_ref, n_ref = call("sparse_relu", x, impl="reference")
    assert isinstance(y, cupy.ndarray)
    np.testing.assert_array_equal(y.get(), y_ref.get())
    assert nnz == n_ref


def test_sparse_relu_numpy_scalar_threshold_compares_in_the_data_dtype():
    # float32(0.1) > float64(0.1): the reference once compared in float64 while the fast paths cast first
    x = np.array([0.1, 0.2, -1.0], dtype=np.float32)
    for impl in ("reference", "cpu"):
        y, nnz = call("sparse_relu", x, threshold=np.float64(0.1), impl=impl)
        np.testing.assert_array_equal(y, np.array([0.0, 0.2, 0.0], dtype=np.float32))
        assert nnz == 1


@pytest.mark.gpu
@pytest.mark.parametrize("impl", ["reference", "cuda"])
def test_sparse_relu_cuda_keeps_0d_shape(impl):
    import cupy

    y, nnz = call("sparse_relu", cupy.asarray(np.float32(2.5)), impl=impl)
    assert isinstance(y, cupy.ndarray) and y.shape == () and nnz == 1
    y, nnz = call("sparse_relu", cupy.asarray(np.float64(-2.5)), threshold=np.float64(0.0), impl=impl)
    assert y.shape == () and nnz == 0
