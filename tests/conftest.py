"""Shared test configuration: tests marked ``gpu`` are skipped where no CUDA GPU is usable."""

import pytest

from neuro.backend import cupy_status


def pytest_collection_modifyitems(config, items):
    ok, reason = cupy_status()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
