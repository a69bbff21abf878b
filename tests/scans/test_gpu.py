"""The CUDA scans (block_scan.cu) and their host-side hierarchical launch (scans/gpu.py).

Without a GPU both halves are still checked:

* the host logic, driven by a NumPy emulation of the kernel's contract (one
  call per thread block: scan a tile, write its total and/or its inclusive
  scan with a carry in front), on lengths that need one, two and three levels;
* the kernel source itself, compiled for the CPU by ``cuda_on_cpu.cpp`` (each
  CUDA thread a std::thread, ``__syncthreads`` a barrier) and driven by the
  same host code: the shared-memory up-sweep / down-sweep with its padding,
  the tile edges, the carries and both dtypes.

The ``gpu`` tests run the real kernels against the NumPy reference where a
GPU exists.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import neuro.backend
import scans
from neuro.kernels import call
from scans import gpu, ops

# ------------------------------------------------------------ emulation


class EmulatedKernel:
    """What one launch of ``scan_add_*`` / ``scan_affine_*`` does, block by block, in NumPy."""

    def __init__(self, kind):
        self.kind = kind
        self.launches = []

    def __call__(self, grid, block, args):
        assert block == (gpu.BLOCK,)
        if self.kind == "add":
            x, y, sums, carry, n, tiles, mode = args
            inputs, outs, sums, carry = (x,), (y,), (sums,), (carry,)
        else:
            a, b, ya, yb, sa, sb, ca, cb, n, tiles, mode = args
            inputs, outs, sums, carry = (a, b), (ya, yb), (sa, sb), (ca, cb)
        n, tiles, mode = int(n), int(tiles), int(mode)
        assert isinstance(args[-1], np.int32) and isinstance(args[-2], np.int64)
        self.launches.append((grid[0], mode))
        flat_in = [v.reshape(-1) for v in inputs]
        for blk in range(grid[0]):
            row, tile = divmod(blk, tiles)
            lo, hi = row * n + tile * gpu.TILE, row * n + min(n, (tile + 1) * gpu.TILE)
            assert hi > lo
            if self.kind == "add":
                local = (np.cumsum(flat_in[0][lo:hi]),)
            else:
                seg_a, seg_b = flat_in[0][lo:hi], flat_in[1][lo:hi]
                local = (np.cumprod(seg_a), scans.linear_recurrence(seg_a, seg_b))
            if mode & gpu.MODE_WRITE_SUMS:
                for s, part in zip(sums, local):
                    s.reshape(-1)[blk] = part[-1]
            if mode & gpu.MODE_WRITE_Y:
                if mode & gpu.MODE_USE_CARRY and tile > 0:  # a row's first tile takes no carry
                    prefix = tuple(c.reshape(-1)[blk] for c in carry)
                    if self.kind == "add":
                        local = (prefix[0] + local[0],)
                    else:  # combine(prefix, local): prefix first
                        local = (local[0] * prefix[0], local[0] * prefix[1] + local[1])
                if self.kind == "add":
                    outs[0].reshape(-1)[lo:hi] = local[0]
                else:
                    outs[1].reshape(-1)[lo:hi] = local[1]
                    if mode & gpu.MODE_WRITE_A:
                        outs[0].reshape(-1)[lo:hi] = local[0]


@pytest.mark.parametrize("n,levels", [(1, 1), (511, 1), (512, 1), (513, 2), (5000, 2), (gpu.TILE**2 + 1, 3)])
def test_hierarchical_add_host_logic(n, levels):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, n)) if n < 10**5 else rng.standard_normal(n)
    kernel = EmulatedKernel("add")
    got = gpu.launch_add(kernel, x, axis=-1)
    np.testing.assert_allclose(got, np.cumsum(x, axis=-1), rtol=1e-10, atol=1e-9)
    depth = sum(1 for _, mode in kernel.launches if mode & gpu.MODE_WRITE_SUMS) + 1
    assert depth == levels


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape", [(1, 1300, 1), (2, 700, 3), (1, gpu.TILE**2 + 5, 1)])
def test_hierarchical_recurrence_host_logic(shape, reverse):
    rng = np.random.default_rng(shape[1])
    a, b = rng.uniform(0.9, 1.0, shape), rng.standard_normal(shape)
    h0 = rng.standard_normal((shape[0], shape[2]))
    b_before = b.copy()
    got = gpu.launch_recurrence(EmulatedKernel("affine"), a, b, h0, reverse=reverse)
    want = call("scans.linear_recurrence", a, b, h0, impl="cpu", reverse=reverse)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("kind", ["add", "affine"])
def test_batches_beyond_the_grid_limit_are_launched_in_row_slices(monkeypatch, kind):
    monkeypatch.setattr(gpu, "MAX_GRID", 7)  # 3 tiles a row: at most 2 rows a launch
    rng = np.random.default_rng(6)
    kernel = EmulatedKernel(kind)
    if kind == "add":
        x = rng.standard_normal((5, 1100))
        got = gpu.launch_add(kernel, x, axis=-1)
        np.testing.assert_allclose(got, np.cumsum(x, axis=-1), rtol=1e-10, atol=1e-10)
    else:
        a, b = rng.uniform(0.9, 1.0, (5, 1100, 1)), rng.standard_normal((5, 1100, 1))
        got = gpu.launch_recurrence(kernel, a, b, np.zeros((5, 1)))
        np.testing.assert_allclose(got, call("scans.linear_recurrence", a, b, np.zeros((5, 1)), impl="cpu"), rtol=1e-9, atol=1e-9)
    assert max(grid for grid, _ in kernel.launches) <= 7


def test_add_launcher_axis_and_empty():
    x = np.random.default_rng(0).standard_normal((3, 600, 2))
    np.testing.assert_allclose(gpu.launch_add(EmulatedKernel("add"), x, axis=1), np.cumsum(x, axis=1), rtol=1e-10, atol=1e-10)
    assert gpu.launch_add(EmulatedKernel("add"), np.ones((0, 4)), axis=0).shape == (0, 4)


def test_cuda_source_constants_match_host():
    source = (gpu.__file__.rsplit("/", 1)[0] + "/block_scan.cu")
    text = open(source).read()
    assert f"constexpr int BLOCK = {gpu.BLOCK};" in text
    for name in ("MODE_WRITE_SUMS", "MODE_WRITE_Y", "MODE_USE_CARRY", "MODE_WRITE_A"):
        assert f"#define {name} {getattr(gpu, name)}" in text
    assert "#define CONFLICT_FREE_OFFSET(n) ((n) >> LOG_NUM_BANKS)" in text


# ------------------------------------- the real kernel source, on the CPU

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cuda_on_cpu(tmp_path_factory):
    """block_scan.cu compiled for the CPU (cuda_on_cpu.cpp: threads + barrier), loaded with ctypes."""
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler to run the CUDA source on the CPU")
    lib = tmp_path_factory.mktemp("cuda_on_cpu") / "cuda_on_cpu.so"
    out = subprocess.run(
        [cxx, "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", str(HERE / "cuda_on_cpu.cpp"), "-o", str(lib)],
        capture_output=True, text=True, timeout=300,
    )
    if out.returncode != 0 and "barrier" in out.stderr:
        pytest.skip(f"{cxx} lacks C++20 <barrier>")
    assert out.returncode == 0, out.stderr
    return ctypes.CDLL(str(lib))


class CpuKernel:
    """A kernel of block_scan.cu run on the CPU, called as cupy.RawKernel is: ``kernel(grid, block, args)``."""

    def __init__(self, lib, name):
        self.fn = getattr(lib, f"run_{name}")
        self.fn.restype = None

    def __call__(self, grid, block, args):
        converted = []
        for arg in args:
            if isinstance(arg, np.ndarray):
                assert arg.flags.c_contiguous
                converted.append(ctypes.c_void_p(arg.ctypes.data))
            elif isinstance(arg, np.int64):
                converted.append(ctypes.c_longlong(int(arg)))
            elif isinstance(arg, np.int32):
                converted.append(ctypes.c_int(int(arg)))
            else:
                raise AssertionError(f"unexpected kernel argument {arg!r}")
        self.fn(ctypes.c_int(grid[0]), ctypes.c_int(block[0]), *converted)


# Each emulated block runs 256 OS threads: the cases are few and small on purpose.
@pytest.mark.parametrize(
    "dtype,shape,axis",
    [(np.float64, (1,), 0), (np.float64, (5, 3), 0), (np.float64, (2, 512), 1), (np.float64, (2, 1500), 1),
     (np.float64, (700, 2), 0), (np.float32, (2, 1500), 1), (np.float32, (5, 3), 0)],
)
def test_cuda_source_on_cpu_add(cuda_on_cpu, dtype, shape, axis):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    kernel = CpuKernel(cuda_on_cpu, f"scan_add_{'f32' if dtype == np.float32 else 'f64'}")
    got = gpu.launch_add(kernel, x, axis=axis)
    want = np.cumsum(x.astype(np.float64), axis=axis)
    assert got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "dtype,shape", [(np.float64, (1, 3, 1)), (np.float64, (1, 1300, 1)), (np.float64, (2, 600, 2)), (np.float32, (2, 600, 2))]
)
def test_cuda_source_on_cpu_recurrence(cuda_on_cpu, dtype, reverse, shape):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.9, 1.0, shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    h0 = rng.standard_normal((shape[0], shape[2])).astype(dtype)
    kernel = CpuKernel(cuda_on_cpu, f"scan_affine_{'f32' if dtype == np.float32 else 'f64'}")
    got = gpu.launch_recurrence(kernel, a, b, h0, reverse=reverse)
    want = call("scans.linear_recurrence", *(v.astype(np.float64) for v in (a, b, h0)), impl="cpu", reverse=reverse)
    assert got.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))


@pytest.mark.slow
def test_cuda_source_on_cpu_three_levels(cuda_on_cpu):
    """A row longer than TILE^2: block sums of block sums (about a thousand emulated blocks)."""
    rng = np.random.default_rng(3)
    n = gpu.TILE**2 + 77
    x = rng.standard_normal(n)
    got = gpu.launch_add(CpuKernel(cuda_on_cpu, "scan_add_f64"), x, axis=0)
    np.testing.assert_allclose(got, np.cumsum(x), rtol=0, atol=1e-10 * np.abs(np.cumsum(x)).max())
    a, b = rng.uniform(0.99, 1.0, (1, n, 1)), rng.standard_normal((1, n, 1))
    h = gpu.launch_recurrence(CpuKernel(cuda_on_cpu, "scan_affine_f64"), a, b, np.zeros((1, 1)))
    want = call("scans.linear_recurrence", a, b, np.zeros((1, 1)), impl="cpu")
    np.testing.assert_allclose(h, want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_cuda_source_on_cpu_affine_both_parts(cuda_on_cpu):
    """MODE_WRITE_A: the `a` part of the affine scan is the running product."""
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.9, 1.0, (2, 1100)), rng.standard_normal((2, 1100))
    ya, yb = np.empty_like(a), np.empty_like(b)
    gpu.scan_rows(CpuKernel(cuda_on_cpu, "scan_affine_f64"), "affine", (a, b), (ya, yb))
    np.testing.assert_allclose(ya, np.cumprod(a, axis=1), rtol=1e-12)
    np.testing.assert_allclose(yb, scans.linear_recurrence(a, b, axis=1), rtol=1e-11, atol=1e-11)


def _sequential_recurrence(a, b):
    """h[t] = a[t] h[t-1] + b[t] from h = 0, row by row: the plain-loop reference."""
    h = np.empty_like(b)
    for r in range(b.shape[0]):
        state = b.dtype.type(0)
        for t in range(b.shape[1]):
            state = a[r, t] * state + b[r, t]
            h[r, t] = state
    return h


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_source_on_cpu_identity_is_exact_with_infinities(cuda_on_cpu, dtype):
    # (1, 0) is no IEEE identity: combine((1, 0), y) computed y.a * 0, NaN for an infinite y.a
    kernel = CpuKernel(cuda_on_cpu, f"scan_affine_{'f32' if dtype == np.float32 else 'f64'}")
    a, b = np.array([[2.0, np.inf]], dtype=dtype), np.ones((1, 2), dtype=dtype)
    ya, yb = np.empty_like(a), np.empty_like(b)
    gpu.scan_rows(kernel, "affine", (a, b), (ya, yb))
    np.testing.assert_array_equal(yb, [[1.0, np.inf]])
    np.testing.assert_array_equal(ya, [[2.0, np.inf]])
    # several tiles: an infinity at the first element of a row's second tile meets the identity in the
    # down-sweep and the carry h[511] (finite) in front; the plain loop gives +-inf from there on
    rng = np.random.default_rng(4)
    a = rng.uniform(0.5, 0.9, (2, 1100)).astype(dtype)
    b = rng.standard_normal((2, 1100)).astype(dtype)
    a[0, 512] = np.inf
    yb = np.empty_like(b)
    gpu.scan_rows(kernel, "affine", (a, b), (None, yb))
    want = _sequential_recurrence(a, b)
    assert np.isinf(want[0, 512:]).all() and not np.isnan(yb).any()
    np.testing.assert_array_equal(yb[0, 512:], want[0, 512:])
    np.testing.assert_allclose(yb[:, :512], want[:, :512], rtol=1e-4 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(yb[1], want[1], rtol=1e-4 if dtype == np.float32 else 1e-12)


# ------------------------------------------------------------- real GPU



@pytest.mark.gpu
@pytest.mark.skipif(not neuro.backend.gpu_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((1,), 0), ((511,), 0), ((513,), 0), ((3, 100_003), 1), ((1 << 20,), 0), ((7, 5, 9), 1)])
def test_cuda_scan_add_matches_numpy(dtype, shape, axis):
    import cupy

    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    got = call("scans.scan_add", cupy.asarray(x), impl="cuda", axis=axis)
    want = np.cumsum(x.astype(np.float64), axis=axis)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))
    got_scan = scans.scan(ops.add, cupy.asarray(x), axis=axis)  # auto dispatches to the kernel
    np.testing.assert_allclose(cupy.asnumpy(got_scan), want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))


@pytest.mark.gpu
@pytest.mark.skipif(not neuro.backend.gpu_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape,axis", [((1000,), 0), ((4, 8, 3000), -1), ((600, 5), 0), ((1, 1 << 19), 1)])
def test_cuda_linear_recurrence_matches_reference(dtype, reverse, shape, axis):
    import cupy

    rng = np.random.default_rng(1)
    a = rng.uniform(0.9, 1.0, shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    h0 = rng.standard_normal(np.delete(np.array(shape), axis % len(shape)).tolist()).astype(dtype)
    want = scans.linear_recurrence(a.astype(np.float64), b.astype(np.float64), h0=h0.astype(np.float64), axis=axis, reverse=reverse)
    got = scans.linear_recurrence(cupy.asarray(a), cupy.asarray(b), h0=cupy.asarray(h0), axis=axis, reverse=reverse)
    assert isinstance(got, cupy.ndarray) and got.dtype == dtype
    tol = 1e-3 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))
    ref = scans.linear_recurrence(cupy.asarray(a), cupy.asarray(b), h0=cupy.asarray(h0), axis=axis, reverse=reverse, impl="reference")
    np.testing.assert_allclose(cupy.asnumpy(ref), want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))


@pytest.mark.gpu
@pytest.mark.skipif(not neuro.backend.gpu_available(), reason="no CUDA GPU")
def test_cuda_generic_ops_run_on_cupy():
    import cupy

    x = np.random.default_rng(2).standard_normal((300, 4))
    for name in ("maximum", "logaddexp", "mul"):
        want = scans.scan(ops.BUILTINS[name], x, algorithm="sequential")
        got = scans.scan(ops.BUILTINS[name], cupy.asarray(x))
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-10, atol=1e-10)
    a = np.random.default_rng(3).uniform(0.5, 1, (300, 4))
    A, B = scans.scan(ops.affine, (cupy.asarray(a), cupy.asarray(x)))
    A0, B0 = scans.scan(ops.affine, (a, x), algorithm="sequential")
    np.testing.assert_allclose(cupy.asnumpy(A), A0, rtol=1e-10)
    np.testing.assert_allclose(cupy.asnumpy(B), B0, rtol=1e-10, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.skipif(not neuro.backend.gpu_available(), reason="no CUDA GPU")
def test_cuda_kernel_call_with_mixed_dtypes_uses_the_common_dtype():
    # the registry once picked the kernel by the first array's dtype (float32) while the launcher cast
    # the data to b's (float64): silent garbage
    import cupy

    rng = np.random.default_rng(5)
    a, b, h0 = rng.uniform(0.5, 1.0, (1, 700, 2)), rng.standard_normal((1, 700, 2)), rng.standard_normal((1, 2))
    a32 = a.astype(np.float32)
    want = call("scans.linear_recurrence", a32.astype(np.float64), b, h0, impl="cpu")
    got = call("scans.linear_recurrence", cupy.asarray(a32), cupy.asarray(b), cupy.asarray(h0), impl="cuda")
    assert got.dtype == np.float64
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-10, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.skipif(not neuro.backend.gpu_available(), reason="no CUDA GPU")
def test_cuda_paths_follow_numpy_dtypes_and_overflow():
    import cupy

    for algorithm in ("auto", "hillis_steele", "blelloch"):
        got = scans.scan(ops.add, cupy.asarray(np.array([True, True, False, True])), algorithm=algorithm)
        assert got.dtype == np.int64 and cupy.asnumpy(got).tolist() == [1, 2, 2, 3]
        got = scans.scan(ops.add, cupy.asarray(np.array([2**31 - 1, 1], np.int32)), algorithm=algorithm)
        assert got.dtype == np.int64 and cupy.asnumpy(got).tolist() == [2**31 - 1, 2**31]
    x = np.array([3e38, 3e38, -3e38, -3e38] * 300, np.float32)  # the scan_add kernel reassociates too
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(cupy.asnumpy(scans.scan(ops.add, cupy.asarray(x))), np.cumsum(x))
    a = np.array([1e200] * 3 + [1e-200] * 40 + [0.5] * 21)
    A = np.stack([a, np.full(64, 0.5), a[::-1]], axis=1)
    B = np.ones((64, 3))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for reverse in (False, True):
            want = scans.linear_recurrence(A, B, reverse=reverse, impl="cpu")
            for impl in (None, "reference"):
                got = scans.linear_recurrence(cupy.asarray(A), cupy.asarray(B), reverse=reverse, impl=impl)
                np.testing.assert_array_equal(cupy.asnumpy(got), want)
