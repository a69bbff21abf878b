"""Shared test configuration.

* Tests marked ``gpu`` are skipped, with the reason, where no CUDA GPU is usable.
* Under fakecupy, a test that uses a CuPy API that CuPy 13 rejects fails.
* Under fakecupy (``PYTHONPATH=.../fakecupy``), the emulators of
  ``tests/fakecupy_emulators.py`` are registered for the kernels fakecupy does not ship.
* BLAS (and PyTorch's intra-op pool) run single-threaded for the whole session:
  the tests use small matrices, where a second thread only adds spinning and,
  on a loaded 2-core machine, slows small solves down by orders of magnitude.
"""

from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from neuro.backend import cupy_status

_blas_limit = None


def _register_fake_emulators() -> None:
    import importlib.util

    spec = importlib.util.find_spec("cupy")
    if spec is None or "fakecupy" not in str(spec.origin):
        return
    import cupy

    path = Path(__file__).with_name("fakecupy_emulators.py")
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("fakecupy_emulators", path))
    module.__spec__.loader.exec_module(module)
    for name, fn in module.KERNELS.items():
        cupy._fake.register_kernel(name, fn)


def pytest_configure(config):
    global _blas_limit
    _register_fake_emulators()
    _blas_limit = threadpool_limits(limits=1, user_api="blas")
    try:
        import torch
    except ImportError:  # the reference is only needed by the tests that use it
        return
    torch.set_num_threads(1)


def pytest_unconfigure(config):
    if _blas_limit is not None:
        _blas_limit.restore_original_limits()


def pytest_collection_modifyitems(config, items):
    ok, reason = cupy_status()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {reason}")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # not `"gpu" in item.keywords`: that matches any node named *gpu*
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_cupy13_incompatibility():
    """Under fakecupy, a test fails if the code it runs uses a CuPy API that CuPy 13 rejects."""
    import sys

    fake = getattr(sys.modules.get("cupy"), "_fake", None)
    if fake is None:
        yield
        return
    before = len(fake.EVENTS)
    yield
    bad = [f"{where}: {msg}" for kind, msg, where in fake.EVENTS[before:] if kind == "CUPY13"]
    assert not bad, "CuPy-13 incompatibilities (the gpu extra allows cupy>=13):\n" + "\n".join(bad)
