"""The GPU acceptance run (benchmarks/bench_gpu.py) in its quick form: on a GPU, or under fakecupy."""

import pytest

from benchmarks import bench_gpu


@pytest.mark.gpu
def test_every_cuda_kernel_is_checked_and_equals_its_reference():
    from experiments.environment import all_kernels

    report = bench_gpu.check_kernels(quick=True)
    assert {name for name, _, _ in report} == {n for n, info in all_kernels().items() if info["cuda"]}
    assert all(ok for _, ok, _ in report), report


@pytest.mark.gpu
def test_quick_timings_run_and_print_one_table(capsys):
    results = bench_gpu.run(quick=True, run_tests=False)
    names = [r.name for r in results]
    assert "scan add (GPU vs cupy.cumsum)" in names and "ESN batched run (GPU vs CPU)" in names
    assert all(r.ours_median_s > 0 and r.peer_median_s > 0 for r in results)
    out = capsys.readouterr().out
    assert "operation" in out and "0 kernel check(s) failed" in out


def test_without_a_gpu_it_says_so(monkeypatch, capsys):
    monkeypatch.setattr(bench_gpu, "cupy_status", lambda: (False, "no device"))
    assert bench_gpu.run(quick=True) == []
    assert "skipped, no usable CUDA GPU (no device)" in capsys.readouterr().out
