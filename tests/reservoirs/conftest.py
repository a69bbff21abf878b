"""One BLAS thread for these tests: OpenBLAS threads spinning on a shared 2-core machine slow small
dense solves (eigvals, Cholesky) down by orders of magnitude."""

import pytest


@pytest.fixture(autouse=True)
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
