import os
import subprocess
import sys

import numpy as np
import pytest

from neuro import backend
from neuro.backend import array_module, asnumpy, make_rng, resolve_dtype, set_backend, to_device, use_backend


def test_numpy_is_default_and_array_module_follows_arrays():
    assert backend.get_backend() == "numpy"
    assert array_module() is np
    assert array_module(np.zeros(3), 1.0, None) is np


def test_unknown_backend_name_is_a_value_error():
    with pytest.raises(ValueError, match="backend must be one of"):
        set_backend("tensorflow")
    with pytest.raises(ValueError, match="backend must be one of"):
        set_backend(3)
    assert backend.get_backend() == "numpy"


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is present: the error path cannot be shown")
def test_cupy_without_gpu_is_a_runtime_error_naming_what_is_missing():
    ok, reason = backend.cupy_status()
    assert not ok
    with pytest.raises(RuntimeError, match="'cupy' backend is not available") as info:
        set_backend("cupy")
    message = str(info.value)
    assert ("no CUDA GPU" in message) or ("not installed" in message)
    assert backend.get_backend() == "numpy"
    with pytest.raises(RuntimeError):
        to_device(np.ones(2), "cupy")


def test_env_variable_is_validated():
    env = dict(os.environ, NEURO_BACKEND="bogus")
    out = subprocess.run([sys.executable, "-c", "import neuro"], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "NEURO_BACKEND must be one of" in out.stderr
    env["NEURO_BACKEND"] = "numpy"
    ok = subprocess.run([sys.executable, "-c", "import neuro; print(neuro.get_backend())"], env=env, capture_output=True, text=True)
    assert ok.stdout.strip() == "numpy"


def test_use_backend_restores_previous():
    with use_backend("numpy"):
        assert backend.get_backend() == "numpy"
    assert backend.get_backend() == "numpy"


def test_asnumpy_and_to_device_on_numpy():
    x = [1.0, 2.0]
    assert isinstance(asnumpy(x), np.ndarray)
    y = to_device(x, "numpy", dtype=np.float32)
    assert y.dtype == np.float32 and np.array_equal(y, [1.0, 2.0])


def test_make_rng_accepts_int_none_generator_seedsequence():
    a, b = make_rng(42), make_rng(42)
    assert a.standard_normal() == b.standard_normal()
    g = np.random.default_rng(1)
    assert make_rng(g) is g
    assert isinstance(make_rng(None), np.random.Generator)
    assert isinstance(make_rng(np.random.SeedSequence(3)), np.random.Generator)
    assert make_rng(np.int64(5)).integers(1000) == make_rng(5).integers(1000)


@pytest.mark.parametrize("bad", [1.5, "7", True, [1], object()])
def test_make_rng_rejects_bad_seed_types(bad):
    with pytest.raises(TypeError, match="seed must be"):
        make_rng(bad)


def test_make_rng_rejects_negative_seed():
    with pytest.raises(ValueError, match="non-negative"):
        make_rng(-1)


def test_resolve_dtype():
    assert resolve_dtype(None) == np.float64
    assert resolve_dtype(None, backend.ANN_DTYPE) == np.float32
    assert resolve_dtype("float32") == np.float32
    with pytest.raises(TypeError, match="floating dtype"):
        resolve_dtype("int32")
    with pytest.raises(TypeError, match="floating dtype"):
        resolve_dtype("not-a-dtype")
