// Fused sparse ReLU: y = x > threshold ? x : 0, and the number of nonzero y.
// One pass over x; a per-block count in shared memory, one atomicAdd per block.
// NaN propagates (as torch.relu): the comparison is written as !(x <= threshold).

template <typename T>
__device__ void sparse_relu(const T* __restrict__ x, T* __restrict__ y,
                            unsigned long long* __restrict__ nnz,
                            const long long n, const T threshold) {
    __shared__ unsigned int block_count;
    if (threadIdx.x == 0) block_count = 0;
    __syncthreads();

    unsigned int local = 0;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const T v = x[i];
        const T out = (v <= threshold) ? T(0) : v;
        y[i] = out;
        local += (out != T(0));
    }
    // warp-level sum, then one shared-memory atomic per warp
    for (int offset = 16; offset > 0; offset >>= 1)
        local += __shfl_down_sync(0xffffffffu, local, offset);
    if ((threadIdx.x & 31) == 0) atomicAdd(&block_count, local);
    __syncthreads();
    if (threadIdx.x == 0) atomicAdd(nnz, (unsigned long long)block_count);
}

extern "C" __global__ void sparse_relu_f32(const float* x, float* y, unsigned long long* nnz,
                                           const long long n, const float threshold) {
    sparse_relu<float>(x, y, nnz, n, threshold);
}

extern "C" __global__ void sparse_relu_f64(const double* x, double* y, unsigned long long* nnz,
                                           const long long n, const double threshold) {
    sparse_relu<double>(x, y, nnz, n, threshold);
}
