"""philox.cuh (the CUDA Philox and Poisson intervals of the spiking engine) against neuro.philox's NumPy reference.

Its functions are ``__host__ __device__``, so nvcc builds them into a host program here: no GPU needed to check the
arithmetic the device runs (the device's ``log`` may differ from the host's by an ulp; see philox.cuh).
"""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from neuro.kernels import nvcc_path
from neuro.philox import NEVER_STEP, philox4x32, poisson_isi_reference

KERNELS = Path(__file__).resolve().parents[2] / "neuro" / "kernels"
NVCC = nvcc_path()

PROGRAM = r"""
#include <cstdio>
#include "philox.cuh"
int main() {
    unsigned int c[4], k[2];
    unsigned long long k0, k1;
    long long neuron, draw;
    double log_q;
    while (scanf("%u %u %u %u %u %u %llu %llu %lld %lld %la", &c[0], &c[1], &c[2], &c[3], &k[0], &k[1],
                 &k0, &k1, &neuron, &draw, &log_q) == 11) {
        neuro_philox::rounds(c[0], c[1], c[2], c[3], k[0], k[1]);
        printf("%u %u %u %u %lld\n", c[0], c[1], c[2], c[3], neuro_philox::poisson_isi(k0, k1, neuron, draw, log_q));
    }
    return 0;
}
"""


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed on this machine")
def test_cuda_philox_and_intervals_equal_the_numpy_reference(tmp_path):
    source = tmp_path / "philox_host.cu"
    source.write_text(PROGRAM)
    build = subprocess.run([NVCC, "-std=c++17", f"-I{KERNELS}", str(source), "-o", str(tmp_path / "philox_host")],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    rng = np.random.default_rng(0)
    n = 3000
    counter = rng.integers(0, 1 << 32, (n, 4), dtype=np.uint64)
    counter[0] = 0  # Random123's known answer for a zero counter and key
    key = rng.integers(0, 1 << 32, (n, 2), dtype=np.uint64)
    key[0] = 0
    stream = rng.integers(0, 1 << 32, (n, 2), dtype=np.uint64)
    neuron = rng.integers(0, 1 << 20, n)
    draw = rng.integers(0, 1 << 40, n)  # beyond 32 bits: both counter words
    log_q = np.log1p(-rng.uniform(0.0, 1.0, n))
    log_q[:3] = [0.0, -np.inf, np.log1p(-1e-12)]  # rate 0, p = 1, a tiny p (huge intervals)
    lines = "".join(f"{' '.join(map(str, c))} {' '.join(map(str, k))} {s[0]} {s[1]} {i} {d} {q.hex()}\n"
                    for c, k, s, i, d, q in zip(counter, key, stream, neuron, draw, log_q))
    run = subprocess.run([str(tmp_path / "philox_host")], input=lines, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = np.array([line.split() for line in run.stdout.splitlines()], dtype=np.int64)
    assert out.shape == (n, 5)
    np.testing.assert_array_equal(out[:, :4], philox4x32(counter, key))
    assert tuple(out[0, :4]) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    want = poisson_isi_reference(stream, neuron, draw, log_q)
    np.testing.assert_array_equal(out[:, 4], want)
    assert out[0, 4] == NEVER_STEP and out[1, 4] == 1 and out[2, 4] > 1000
