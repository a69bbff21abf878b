"""Sequence operators: flash vs naive attention (time and peak memory); flash forward vs PyTorch's
``scaled_dot_product_attention`` (its CPU flash kernel, one thread each; target <= 1.2x at N = 4096
and 16384); selective scan vs a sequential NumPy loop."""

from __future__ import annotations

import tracemalloc

import numpy as np

from ann.attention import flash_attention, scaled_dot_product_attention
from ann.ssm_kernel import selective_scan_arrays
from ann.tensor import no_grad

from .harness import Result, compare


def _peak_bytes(fn) -> int:
    """Peak memory NumPy allocated while ``fn`` ran (tracemalloc sees NumPy's allocations)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def attention(quick: bool) -> list[Result]:
    rng = np.random.default_rng(0)
    results = []
    for n in ([1024, 2048] if quick else [1024, 2048, 4096, 8192]):
        q, k, v = (rng.standard_normal((1, n, 64)).astype(np.float32) for _ in range(3))

        def ours():
            with no_grad():
                return flash_attention(q, k, v)

        def peer():
            with no_grad():
                return scaled_dot_product_attention(q, k, v)

        inputs = 3 * q.nbytes
        ours()  # the first call loads the compiled tile kernel (numba's cache): not part of a call's memory
        mem_ours, mem_peer = _peak_bytes(ours), _peak_bytes(peer)
        r = compare(
            f"attention forward N={n} d=64 float32", ours, peer,
            ours_label="flash_attention", peer_label="naive attention", repeats=3 if quick or n >= 4096 else 5,
            params={"N": n, "d": 64, "peak_extra_MiB_flash": round(mem_ours / 2**20, 1),
                    "peak_extra_MiB_naive": round(mem_peer / 2**20, 1), "memory_ratio": round(mem_ours / mem_peer, 4),
                    "inputs_MiB": round(inputs / 2**20, 1)},
            target="N=8192: time <= 1.5x naive, peak memory <= 1/8 of naive",
        )
        results.append(r)
        print(f"  peak memory: flash {mem_ours / 2**20:.1f} MiB, naive {mem_peer / 2**20:.1f} MiB (ratio {mem_ours / mem_peer:.4f})")
    return results


def attention_vs_torch(quick: bool) -> list[Result]:
    """``flash_attention`` forward vs ``torch.nn.functional.scaled_dot_product_attention``, (1, 1, N, 64) float32."""
    import torch

    from .bench_lstm import _one_thread

    rng = np.random.default_rng(0)
    results = []
    with _one_thread():
        for n in ([2048] if quick else [4096, 16384]):
            q, k, v = (rng.standard_normal((1, n, 64)).astype(np.float32) for _ in range(3))
            qt, kt, vt = (torch.tensor(a)[None] for a in (q, k, v))  # 4-D: torch's flash kernel

            def ours():
                with no_grad():
                    return flash_attention(q, k, v)

            def peer():
                with torch.no_grad():
                    return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt)[0]

            np.testing.assert_allclose(ours().numpy(), peer().numpy(), rtol=1e-4, atol=2e-5)
            results.append(compare(
                f"flash attention forward N={n} d=64 float32 (1 thread each)", ours, peer,
                ours_label="flash_attention (NumPy tiles + online-softmax kernel)",
                peer_label=f"torch SDPA CPU {torch.__version__}", repeats=3 if quick else (9 if n < 16384 else 5),
                params={"N": n, "d": 64, "threads": 1, "block_q": 512, "block_k": 512}, target="<= 1.2x",
            ))
    return results


def sequential_selective_scan(u, delta, A, B, C, D, z):
    """The selective_scan_ref algorithm as a NumPy loop over time (the peer)."""
    delta = np.where(delta > 20, delta, np.log1p(np.exp(np.minimum(delta, 20))))
    decay = np.exp(delta[:, :, :, None] * A[None, :, None, :])  # (B, D, L, N)
    drive = delta[:, :, :, None] * np.swapaxes(B, 1, 2)[:, None] * u[:, :, :, None]
    h = np.zeros((u.shape[0], u.shape[1], A.shape[1]), dtype=u.dtype)
    y = np.empty_like(u)
    for t in range(u.shape[2]):
        h = decay[:, :, t] * h + drive[:, :, t]
        y[:, :, t] = np.einsum("bdn,bn->bd", h, C[:, :, t])
    y = y + u * D[:, None]
    return y * (z / (1 + np.exp(-z)))


def selective_scan(quick: bool) -> list[Result]:
    rng = np.random.default_rng(1)
    batch, dim, dstate, length = (4, 256, 16, 512 if quick else 2048)
    u, delta, z = (rng.standard_normal((batch, dim, length)).astype(np.float32) for _ in range(3))
    A = -np.exp(rng.standard_normal((dim, dstate))).astype(np.float32)
    B, C = (rng.standard_normal((batch, dstate, length)).astype(np.float32) for _ in range(2))
    D = rng.standard_normal(dim).astype(np.float32)
    ours = lambda: selective_scan_arrays(u, delta, A, B, C, D, z, None, True)  # noqa: E731
    ref = sequential_selective_scan(u, delta, A, B, C, D, z)
    np.testing.assert_allclose(ours()[0], ref, rtol=2e-3, atol=2e-3)
    out = [
        compare(
            f"selective_scan forward B={batch} D={dim} N={dstate} L={length} float32", ours,
            lambda: sequential_selective_scan(u, delta, A, B, C, D, z),
            ours_label="selective_scan (fused CPU kernel)", peer_label="sequential NumPy loop",
            repeats=3, params={"B": batch, "D": dim, "N": dstate, "L": length}, target=">= 10x faster (ratio <= 0.1)",
        )
    ]
    parallel = lambda: selective_scan_arrays(u, delta, A, B, C, D, z, None, True, impl="reference")  # noqa: E731
    out.append(
        compare(
            f"selective_scan forward, differentiable parallel-scan path, L={length}", parallel,
            lambda: sequential_selective_scan(u, delta, A, B, C, D, z),
            ours_label="selective_scan (parallel scan, as in training)", peer_label="sequential NumPy loop",
            repeats=3, params={"B": batch, "D": dim, "N": dstate, "L": length},
        )
    )
    out.append(_selective_scan_training(u, delta, A, B, C, D, z))
    return out


def _selective_scan_training(u, delta, A, B, C, D, z) -> Result:
    """Forward + backward (what a training step pays): the fused kernels vs the composed parallel scan."""
    from ann.ssm import composed_selective_scan, selective_scan
    from ann.tensor import Tensor

    grad = np.random.default_rng(2).standard_normal(u.shape).astype(u.dtype)
    arrays = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D, "z": z}

    def step(path):
        xs = {k: Tensor(v, requires_grad=True) for k, v in arrays.items()}
        path(**xs, delta_softplus=True).backward(grad)
        return xs

    fused, composed = step(selective_scan), step(composed_selective_scan)
    err = max(float(np.abs(fused[k].grad - composed[k].grad).max() / np.abs(composed[k].grad).max()) for k in arrays)
    if err > 1e-3:
        raise AssertionError(f"fused and composed gradients differ by {err} (relative to the largest)")
    batch, dim, length = u.shape
    return compare(
        f"selective_scan forward+backward B={batch} D={dim} N={A.shape[1]} L={length} float32",
        lambda: step(selective_scan), lambda: step(composed_selective_scan),
        ours_label="fused kernels (backward recomputes the states)", peer_label="composed parallel scan (autograd)",
        repeats=3, params={"B": batch, "D": dim, "N": A.shape[1], "L": length, "max_rel_grad_diff": err},
        target="report",
    )


def run(quick: bool = False) -> list[Result]:
    return attention(quick) + attention_vs_torch(quick) + selective_scan(quick)
