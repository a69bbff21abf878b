"""Where the points of a run are computed: this process, a local process pool, or Dask.

Every executor takes the same task dicts and runs the same function on them
(:func:`experiments.runner.run_point`), so a sweep gives the same numbers
whichever runs it. Workers pin their thread pools (numba's, and BLAS/OpenMP
through threadpoolctl) to ``threads`` per task so that workers x threads
never exceeds the cores: ``cores // workers`` on one machine, and on a Dask
cluster each host's cores divided by the Dask worker threads on that host.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from .config import ConfigError

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "DaskExecutor", "pinned_threads", "thread_counts",
           "cpu_count"]

log = logging.getLogger("neuro.experiments")


def cpu_count() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def pinned_threads(threads: int | None):
    """Limit numba's threads and BLAS/OpenMP pools (threadpoolctl) to ``threads`` inside the block (None: leave them)."""
    if threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(previous)


def thread_counts() -> dict:
    """The thread counts in force here: numba's and the largest BLAS/OpenMP pool's."""
    from threadpoolctl import threadpool_info

    counts = {"pools": max((p["num_threads"] for p in threadpool_info()), default=1)}
    try:
        import numba
    except ImportError:
        return counts
    counts["numba"] = numba.get_num_threads()
    return counts


class Executor:
    """Runs ``fn(task)`` for each task; yields the outcomes as they finish."""

    kind = "in-process"
    workers = 1

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": self.workers}

    def map(self, fn: Callable[[dict], dict], tasks: Iterable[dict]) -> Iterator[dict]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InlineExecutor(Executor):
    """Each point in this process, one after the other, with the thread pools as they are."""

    def map(self, fn, tasks):
        for task in tasks:
            yield fn(dict(task, threads=None, inline=True))


def _init_worker(threads: int) -> None:
    # libraries loaded later in the worker (numba, a study's own) start with this many threads
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


class ProcessExecutor(Executor):
    """A local pool of ``workers`` processes (started fresh: ``spawn``), ``cores // workers`` threads each."""

    kind = "process-pool"

    def __init__(self, workers: int | None = None):
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing

        cores = cpu_count()
        self.workers = cores if workers is None else int(workers)
        if self.workers < 1:
            raise ConfigError(f"--workers: expected a positive int, got {workers!r}")
        self.threads = max(1, cores // self.workers)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(self.threads,))

    def describe(self):
        return {"kind": self.kind, "workers": self.workers, "threads_per_worker": self.threads}

    def map(self, fn, tasks):
        from concurrent.futures import as_completed

        futures = [self._pool.submit(fn, dict(task, threads=self.threads)) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for f in futures:
                f.cancel()

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Dask distributed: an existing cluster (``scheduler`` address) or a ``LocalCluster`` of ``local`` worker processes.

    Each Dask worker thread runs one point at a time; a point's pools get the
    host's cores divided by the Dask threads on that host.
    """

    kind = "dask"

    def __init__(self, *, scheduler: str | None = None, local: int | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("Dask is not installed: pip install 'neurokit-sim[dist]'") from None
        if (scheduler is None) == (local is None):
            raise ConfigError("give either a scheduler address or a number of local workers")
        self._cluster = None
        if local is not None:
            if int(local) < 1:
                raise ConfigError(f"--dask-local: expected a positive int, got {local!r}")
            self._cluster = LocalCluster(n_workers=int(local), threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.ERROR)
            address = self._cluster.scheduler_address
        else:
            address = scheduler
        try:
            self._client = Client(address, timeout="30s")
        except OSError as exc:
            self.close()
            raise ConfigError(f"--scheduler: cannot reach {address!r}: {exc}") from None
        self.threads_by_host = self._threads_by_host()
        self.workers = sum(w["nthreads"] for w in self._client.scheduler_info()["workers"].values())
        self.scheduler = address if local is None else "local"

    def _threads_by_host(self) -> dict[str, int]:
        hosts = self._client.run(lambda: (socket.gethostname(), cpu_count()))
        nthreads = {addr: w["nthreads"] for addr, w in self._client.scheduler_info()["workers"].items()}
        per_host: dict[str, list[int]] = {}
        for addr, (host, cores) in hosts.items():
            per_host.setdefault(host, [cores, 0])[1] += nthreads.get(addr, 1)
        return {host: max(1, cores // threads) for host, (cores, threads) in per_host.items()}

    def describe(self):
        return {"kind": self.kind, "workers": self.workers, "scheduler": self.scheduler,
                "threads_per_worker": self.threads_by_host}

    def map(self, fn, tasks):
        from distributed import as_completed

        # a fresh key per submission: a point run again (a resumed or repeated sweep) must not get a cached result
        futures = [self._client.submit(fn, dict(task, threads_by_host=self.threads_by_host), pure=False,
                                       key=f"point-{task['key']}-{secrets.token_hex(8)}") for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            self._client.cancel(futures)

    def close(self):
        client, cluster = getattr(self, "_client", None), self._cluster
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def make_executor(*, workers: int | None = None, dask_local: int | None = None, scheduler: str | None = None,
                  use_pool: bool = False) -> Executor:
    """The executor the options ask for: Dask (``scheduler`` or ``dask_local``), a pool (``use_pool``), else in-process."""
    chosen = [name for name, on in (("--workers", use_pool), ("--dask-local", dask_local is not None),
                                    ("--scheduler", scheduler is not None)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"choose one executor: {' and '.join(chosen)} given")
    if scheduler is not None or dask_local is not None:
        return DaskExecutor(scheduler=scheduler, local=dask_local)
    if use_pool:
        return ProcessExecutor(workers)
    return InlineExecutor()
