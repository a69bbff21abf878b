"""ann tests use small matrices: run BLAS single-threaded so a loaded 2-core machine does not thrash."""

import pytest
import torch

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_limits = None


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    if threadpool_limits is None:
        yield
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    torch.set_num_threads(previous)
