// Philox4x32-10 (Salmon et al. 2011) and the Poisson inter-spike interval drawn from it: the CUDA twin of
// neuro/philox.py (_rounds, _unit, geometric_steps, poisson_isi), the same arithmetic step for step, so a
// seeded run draws the same intervals on the CPU and on the GPU (log() aside: CUDA's double log is within
// 1 ulp of the host's, which moves an interval only when log(u) / log_q falls within an ulp of an integer).
// The functions are __host__ __device__: tests/neuro/test_philox_cuh.py builds them into a host program and
// compares them with the NumPy reference.
#pragma once

namespace neuro_philox {

//: "no spike ahead": neuro.philox.NEVER_STEP
constexpr long long NEVER_STEP = 1LL << 62;

// Ten Philox rounds on the counter (c0, c1, c2, c3) under the key (k0, k1); the result replaces the counter.
__host__ __device__ __forceinline__ void rounds(unsigned int& c0, unsigned int& c1, unsigned int& c2, unsigned int& c3,
                                       unsigned int k0, unsigned int k1) {
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        const unsigned long long p0 = 0xD2511F53ull * c0;
        const unsigned long long p1 = 0xCD9E8D57ull * c2;
        const unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
        const unsigned int n1 = (unsigned int)p1;
        const unsigned int n2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
        const unsigned int n3 = (unsigned int)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;  // 32-bit wrap-around, as `& 0xFFFFFFFF` in the Python
        k1 += 0xBB67AE85u;
    }
}

// A double in (0, 1] from two words: 1 - m 2^-53, m their top 53 bits (exact: no rounding anywhere).
__host__ __device__ __forceinline__ double unit(unsigned int x0, unsigned int x1) {
    const unsigned long long m = (((unsigned long long)x0 << 32) | x1) >> 11;
    return 1.0 - (double)m * 0x1p-53;
}

// Steps to the next success of a per-step Bernoulli trial: 1 + floor(log(u) / log_q), clipped to NEVER_STEP;
// log_q = log(1 - p) (0 for p = 0: never).
__host__ __device__ __forceinline__ long long geometric_steps(double u, double log_q) {
    if (log_q == 0.0) return NEVER_STEP;
    const double k = floor(log(u) / log_q);  // a division is never contracted: no _rn intrinsic needed
    if (k >= 4.0e18) return NEVER_STEP;
    return (long long)k + 1;
}

// The draw-th interval (steps, >= 1) of input `neuron` in the stream keyed (k0, k1): counter
// (draw low word, draw high word, neuron, 0), words 0 and 1 of the output make the uniform.
__host__ __device__ __forceinline__ long long poisson_isi(unsigned long long k0, unsigned long long k1,
                                                          long long neuron, long long draw, double log_q) {
    const unsigned long long d = (unsigned long long)draw;
    unsigned int c0 = (unsigned int)d, c1 = (unsigned int)(d >> 32), c2 = (unsigned int)neuron, c3 = 0u;
    rounds(c0, c1, c2, c3, (unsigned int)k0, (unsigned int)k1);
    return geometric_steps(unit(c0, c1), log_q);
}

}  // namespace neuro_philox
