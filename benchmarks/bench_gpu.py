"""GPU acceptance run: ``python -m benchmarks gpu``, one call on a machine with a CUDA GPU.

1. runs the ``gpu``-marked tests;
2. checks every kernel that has a CUDA implementation against its NumPy
   reference on fresh random data (a kernel without a case here fails, so a
   new kernel cannot go unchecked);
3. times the headline operations on the GPU against the CPU paths and
   against the peers a GPU user would pick where installed (CuPy's own
   ``cumsum``, PyTorch CUDA), alternated, medians; prints one table. The
   last row is the spiking engine: a 100k-neuron network for 1 s with 32
   trials, ``Network(backend="cupy")`` against the CPU engine.

Sized to finish within about 5 minutes on one GPU. Without a GPU it says so
and returns no results. ``--quick`` shrinks every size (the test suite runs
that form under ``../shared/tools/fakecupy`` to check the Python side).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

from neuro import kernels
from neuro.backend import asnumpy, cupy_status

from .harness import Result, compare

__all__ = ["check_kernels", "run", "timings"]


def _sync() -> None:
    import cupy

    cupy.cuda.Device().synchronize()


def _kernel_cases(quick: bool) -> dict[str, Callable[[Any, np.random.Generator], tuple[tuple, dict, float]]]:
    """For each CUDA kernel: ``make(cupy, rng) -> (args, kwargs, relative tolerance)``."""
    n = 10_000 if quick else 1 << 22

    def sparse_relu(cp, rng):
        return (cp.asarray(rng.standard_normal(n).astype(np.float32)),), {"threshold": 0.1}, 0.0

    def scan_add(cp, rng):
        return (cp.asarray(rng.standard_normal((4, n // 4))),), {"axis": 1}, 1e-9

    def linear_recurrence(cp, rng):
        a, b = rng.uniform(0.9, 1.0, (2, n // 8, 4)), rng.standard_normal((2, n // 8, 4))
        return (cp.asarray(a), cp.asarray(b), cp.asarray(rng.standard_normal((2, 4)))), {}, 1e-9

    def gather_matmul(cp, rng):
        F, D = (256, 64) if quick else (4096, 1024)
        h = rng.standard_normal((8, F)).astype(np.float32)
        h[rng.random(h.shape) < 0.9] = 0.0
        return (cp.asarray(h), cp.asarray(rng.standard_normal((F, D)).astype(np.float32))), {}, 1e-5

    return {"sparse_relu": sparse_relu, "scans.scan_add": scan_add, "scans.linear_recurrence": linear_recurrence,
            "gather_matmul": gather_matmul, **_spiking_cases(quick)}


def _spiking_cases(quick: bool) -> dict[str, Callable]:
    """The spiking engine's kernels (in place: ``check_kernels`` compares the arrays they update)."""
    B, N = (2, 300) if quick else (32, 20_000)
    step = 100

    def neurons(cp, rng, cond):
        v = rng.uniform(-65.0, -45.0, (B, N)) if cond else rng.uniform(0.0, 16.0, (B, N))
        syn = rng.uniform(0.0, 0.05, (2, B, N)) if cond else rng.normal(0.0, 2.0, (2, B, N))
        state = (v, syn[0], syn[1], rng.uniform(0.0, 2.0, (B, N)), step - rng.integers(1, 40, (B, N)))
        par = dict(ref=rng.integers(0, 30, N), E_L=np.full(N, -60.0 if cond else 0.0),
                   R=rng.uniform(50.0, 150.0, N) if cond else rng.uniform(0.5, 1.5, N),
                   I_bg=rng.uniform(0.0, 0.2 if cond else 15.0, N), v_th=np.full(N, -50.0 if cond else 15.0),
                   v_reset=np.full(N, -60.0 if cond else 13.5), decay=np.exp(-0.1 / rng.uniform(3.0, 30.0, (3, N))))
        middle = (np.zeros(N), np.full(N, -80.0)) if cond else ()
        args = (*state[:4], state[4], step, par["ref"], par["E_L"], par["R"], par["I_bg"], *middle, par["v_th"],
                par["v_reset"], *par["decay"], np.zeros((B, N), bool))
        return tuple(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args), {}, 1e-12

    def synapses(cp, rng, tm):
        n_pre, L = N // 4, 6
        i = np.sort(rng.integers(0, n_pre, 20 * n_pre))
        indptr = np.searchsorted(i, np.arange(n_pre + 1))
        S = len(i)
        args = [rng.random((B, n_pre)) < 0.1, indptr, rng.integers(0, N, S), rng.normal(0.0, 1.0, S),
                rng.integers(0, L, S)]
        if tm:
            args += [rng.uniform(0.05, 0.9, S), rng.uniform(50.0, 1000.0, S), rng.uniform(10.0, 1000.0, S),
                     rng.uniform(0.05, 0.9, (B, S)), rng.uniform(0.1, 1.0, (B, S)), step - rng.integers(1, 500, (B, S))]
        args += [np.zeros((L, B, N)), step] + ([0.1] if tm else [])
        return tuple(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args), {}, 1e-12

    def poisson(cp, rng):
        keys = rng.integers(0, 1 << 32, (B, 2), dtype=np.uint64)
        log_q = np.log1p(-rng.uniform(0.0, 0.5, (B, N)))
        next_step = np.where(rng.random((B, N)) < 0.3, step, step + 1)
        args = (keys, log_q, rng.integers(0, 1 << 20, (B, N)), next_step, step, np.zeros((B, N), bool))
        return tuple(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args), {}, 0.0

    return {"spiking_lif_step": lambda cp, rng: neurons(cp, rng, False),
            "spiking_lif_cond_step": lambda cp, rng: neurons(cp, rng, True),
            "spiking_propagate": lambda cp, rng: synapses(cp, rng, False),
            "spiking_propagate_tm": lambda cp, rng: synapses(cp, rng, True),
            "spiking_poisson_advance": poisson}


def _same(got, want, rtol: float, what: str) -> None:
    """``got`` (device or host) equals ``want``: exactly for ints, bools and None, to ``rtol`` for floats."""
    if want is None or isinstance(want, (int, np.integer)):
        assert got == want, f"{what}: {got} != {want}"
        return
    got, want = asnumpy(got), np.asarray(want)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def check_kernels(quick: bool = False, seed: int = 0) -> list[tuple[str, bool, str]]:
    """``(kernel, ok, detail)`` for every registered kernel with a CUDA implementation.

    The CUDA kernel runs on the case's device arrays, the reference on host copies of them; the results and
    every array argument afterwards (kernels that update in place) must agree.
    """
    import cupy

    from experiments.environment import all_kernels

    cases = _kernel_cases(quick)
    rng = np.random.default_rng(seed)
    report = []
    for name, info in all_kernels().items():
        if not info["cuda"]:
            continue
        if name not in cases:
            report.append((name, False, "no acceptance case in benchmarks/bench_gpu.py"))
            continue
        args, kw, rtol = cases[name](cupy, rng)
        host = [asnumpy(a) if isinstance(a, cupy.ndarray) else a for a in args]
        try:
            got = kernels.call(name, *args, impl="cuda", **kw)
            want = kernels.call(name, *host, impl="reference", **kw)
            got, want = (g if isinstance(g, tuple) else (g,) for g in (got, want))
            for k, (g, w) in enumerate(zip(got, want)):
                _same(g, w, rtol, f"result {k}")
            for k, (g, w) in enumerate(zip(args, host)):
                if isinstance(w, np.ndarray):
                    _same(g, w, rtol, f"argument {k} after the call")
            report.append((name, True, "equals the reference"))
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the run goes on to the next kernel
            report.append((name, False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
    return report


def _gpu(fn: Callable[[], object]) -> Callable[[], object]:
    def timed():
        out = fn()
        _sync()
        return out

    return timed


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def timings(quick: bool = False) -> list[Result]:
    """Headline operations: GPU against the CPU path and against a GPU peer where one is installed."""
    import cupy

    import ann.functional as F
    import scans
    from ann import Tensor
    from reservoirs import ESN

    rng = np.random.default_rng(1)
    repeats = 2 if quick else 5
    results: list[Result] = []
    torch = _torch_cuda()

    def both(name, gpu_fn, cpu_fn, params, peer=None):
        results.append(compare(f"{name} (GPU vs CPU)", _gpu(gpu_fn), cpu_fn, ours_label="cupy", peer_label="numpy/numba",
                               repeats=repeats, params=params))
        if peer is not None:
            label, fn = peer
            results.append(compare(f"{name} (GPU vs {label})", _gpu(gpu_fn), _gpu(fn), ours_label="cupy",
                                   peer_label=label, repeats=repeats, params=params))

    n = 1 << (12 if quick else 24)
    x = rng.standard_normal(n).astype(np.float32)
    xg = cupy.asarray(x)
    both("scan add", lambda: scans.scan(scans.ops.add, xg), lambda: scans.scan(scans.ops.add, x), {"n": n},
         ("cupy.cumsum", lambda: cupy.cumsum(xg)))

    a = rng.uniform(0.9, 1.0, n).astype(np.float32)
    ag = cupy.asarray(a)
    both("linear recurrence", lambda: scans.linear_recurrence(ag, xg), lambda: scans.linear_recurrence(a, x), {"n": n})

    N, d = (256, 32) if quick else (16_384, 64)
    q = rng.standard_normal((1, N, d)).astype(np.float32)
    qt, qg = Tensor(q), Tensor(cupy.asarray(q))
    peer = None
    if torch is not None:
        tq = torch.as_tensor(q, device="cuda")
        peer = ("torch SDPA", lambda: torch.nn.functional.scaled_dot_product_attention(tq, tq, tq, is_causal=True))
    both("flash attention fwd", lambda: F.flash_attention(qg, qg, qg, causal=True),
         lambda: F.flash_attention(qt, qt, qt, causal=True), {"N": N, "d": d}, peer)

    units, T, B = (200, 20, 4) if quick else (10_000, 100, 32)
    esn = ESN(units, connectivity=min(1.0, 100 / units), input_dim=1, seed=0)
    u = rng.uniform(-1, 1, (B, T, 1))
    ug = cupy.asarray(u)
    both("ESN batched run", lambda: esn.run(ug), lambda: esn.run(u), {"units": units, "T": T, "B": B})

    if "gather_matmul" in kernels.available():
        F_, D = (256, 64) if quick else (4096, 1024)
        h = rng.standard_normal(F_).astype(np.float32)
        h[rng.random(F_) < 0.9] = 0.0
        W = rng.standard_normal((F_, D)).astype(np.float32)
        hg, Wg = cupy.asarray(h), cupy.asarray(W)
        peer = ("dense cupy matmul", lambda: hg @ Wg)
        both("sparse gather 90%", lambda: kernels.call("gather_matmul", hg, Wg), lambda: kernels.call("gather_matmul", h, W),
             {"F": F_, "D": D, "sparsity": 0.9}, peer)

    results.append(_spiking_timing(quick))
    return results


def _spiking_network(n: int, backend: str):
    """LIF neurons (fluctuation-driven: background current below threshold), 1000 Poisson inputs, recurrent
    excitation and inhibition with delays, a rate monitor. The CPU side uses numba's threads over the trials."""
    from neuro import LIF, Network

    net = Network(dt=0.1, seed=0, backend=backend, parallel=backend == "numpy")
    pop = net.population(n, LIF(tau_m=20.0, v_th=15.0, v_reset=0.0, t_ref=2.0, I_bg=14.0), name="P",
                         v_init=("uniform", 0.0, 15.0))
    src = net.poisson(1000, rates=20.0, name="in")
    net.connect(src, pop, "fixed_indegree", k=20, weight=1.0, delay=1.0)
    net.connect(pop, pop, "fixed_indegree", k=40, weight=0.3, delay=1.5)
    net.connect(pop, pop, "fixed_indegree", k=10, weight=-1.5, delay=0.8)
    net.monitor_rate(pop)
    return net


def _spiking_timing(quick: bool) -> Result:
    """A 100k-neuron spiking network for 1 s with 32 trials: the device engine against the CPU engine (fused, numba
    threads). The timed call is ``run``; both networks are reset, untimed, before each. One timed run each (a CPU
    run takes about a minute on 16 cores), after a short run that compiles both."""
    n, trials, duration = (1000, 2, 20.0) if quick else (100_000, 32, 1000.0)
    nets = {backend: _spiking_network(n, backend) for backend in ("cupy", "numpy")}

    def reset():
        for net in nets.values():
            net.reset(trials, seed=1)

    reset()
    for net in nets.values():
        net.run(1.0)
    return compare("spiking network, 1 s (GPU vs CPU)" if not quick else "spiking network (GPU vs CPU)",
                   _gpu(lambda: nets["cupy"].run(duration)), lambda: nets["numpy"].run(duration), ours_label="cupy",
                   peer_label="numpy/numba", repeats=2 if quick else 1, warmup=0, setup=reset,
                   params={"N": n, "B": trials, "ms": duration})


def _table(results: list[Result]) -> str:
    rows = [f"{'operation':<42} {'params':<34} {'GPU ms':>10} {'other ms':>10} {'GPU/other':>9}"]
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        rows.append(f"{r.name:<42} {params:<34} {r.ours_median_s * 1e3:>10.3f} {r.peer_median_s * 1e3:>10.3f} {r.ratio:>9.3f}")
    return "\n".join(rows)


def run(quick: bool = False, *, run_tests: bool = True) -> list[Result]:
    """The whole acceptance run; prints as it goes and returns the timings."""
    ok, reason = cupy_status()
    if not ok:
        print(f"gpu: skipped, no usable CUDA GPU ({reason})")
        return []
    start = time.perf_counter()
    if run_tests:
        print("gpu: running the gpu tests ...", flush=True)
        status = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]).returncode
        print(f"gpu: gpu tests {'passed' if status == 0 else f'FAILED (pytest exit {status})'}", flush=True)
    failed = 0
    for name, good, detail in check_kernels(quick):
        failed += not good
        print(f"gpu: kernel {name:<26} {'ok  ' if good else 'FAIL'} {detail}", flush=True)
    results = timings(quick)
    print(_table(results))
    print(f"gpu: {failed} kernel check(s) failed; finished in {time.perf_counter() - start:.0f} s")
    return results
