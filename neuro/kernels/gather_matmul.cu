// Sparse-input matrix product: out[b, :] += sum over active j of h[b, j] * W[j, :],
// where the active indices idx (the columns of h that are nonzero in some row) are given.
// Only the rows W[idx] are read. Grid: x = blocks of output columns (one thread per column,
// coalesced reads of a W row), y = batch row, z = a share of the active rows (so that one token
// still spreads over many multiprocessors). Each block adds its partial sums with atomicAdd, so
// `out` must be zeroed first and the summation order varies from run to run (rounding only).
// The indices and h values of a share are staged in shared memory one tile at a time.

#define GM_TILE 256

template <typename T>
__device__ void gather_matmul(const T* __restrict__ h, const long long* __restrict__ idx,
                              const T* __restrict__ w, T* __restrict__ out,
                              const long long k, const long long f, const long long d) {
    __shared__ long long s_idx[GM_TILE];
    __shared__ T s_h[GM_TILE];
    const long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const T* hb = h + (long long)blockIdx.y * f;
    const long long per = (k + gridDim.z - 1) / gridDim.z;
    const long long k0 = (long long)blockIdx.z * per;
    const long long k1 = (k0 + per < k) ? (k0 + per) : k;
    T acc = T(0);
    for (long long start = k0; start < k1; start += GM_TILE) {
        const long long n = (k1 - start < GM_TILE) ? (k1 - start) : GM_TILE;
        for (long long t = threadIdx.x; t < n; t += blockDim.x) {
            const long long j = idx[start + t];
            s_idx[t] = j;
            s_h[t] = hb[j];
        }
        __syncthreads();
        if (col < d) {
            for (long long t = 0; t < n; ++t) {
                const T a = s_h[t];
                if (a != T(0)) acc += a * w[s_idx[t] * d + col];
            }
        }
        __syncthreads();
    }
    if (col < d && k1 > k0) atomicAdd(&out[(long long)blockIdx.y * d + col], acc);
}

extern "C" __global__ void gather_matmul_f32(const float* h, const long long* idx, const float* w, float* out,
                                             const long long k, const long long f, const long long d) {
    gather_matmul<float>(h, idx, w, out, k, f, d);
}

extern "C" __global__ void gather_matmul_f64(const double* h, const long long* idx, const double* w, double* out,
                                             const long long k, const long long f, const long long d) {
    gather_matmul<double>(h, idx, w, out, k, f, d);
}
