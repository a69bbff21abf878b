// Runs the CUDA kernels of scans/block_scan.cu on the CPU, for tests on machines without a GPU.
//
// Each CUDA thread of a block is a std::thread; __syncthreads() is a std::barrier
// across them; __shared__ arrays become function statics (one block runs at a time,
// so they are shared by exactly the threads of that block). The kernel source is
// included unchanged. Exposed with C linkage for ctypes: run_<kernel>(grid, block, args...).

#include <barrier>
#include <thread>
#include <vector>

struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};
static thread_local Dim3 threadIdx;
static Dim3 blockIdx;
static std::barrier<>* block_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__
#define __launch_bounds__(n)
inline void __syncthreads() { block_barrier->arrive_and_wait(); }

#include "../../scans/block_scan.cu"

template <typename F>
static void run_grid(int grid, int block, F kernel) {
    std::barrier<> barrier(block);
    block_barrier = &barrier;
    for (int b = 0; b < grid; ++b) {
        blockIdx.x = (unsigned)b;
        std::vector<std::thread> threads;
        threads.reserve(block);
        for (int t = 0; t < block; ++t)
            threads.emplace_back([&kernel, t] {
                threadIdx.x = (unsigned)t;
                kernel();
            });
        for (auto& th : threads) th.join();
    }
    block_barrier = nullptr;
}

#define RUN_ADD(T, S)                                                                                   \
    extern "C" void run_scan_add_##S(int grid, int block, const T* x, T* y, T* sums, const T* carry,   \
                                     long long n, long long tiles, int mode) {                         \
        run_grid(grid, block, [=] { scan_add_##S(x, y, sums, carry, n, tiles, mode); });                \
    }
#define RUN_AFFINE(T, S)                                                                                 \
    extern "C" void run_scan_affine_##S(int grid, int block, const T* a, const T* b, T* ya, T* yb,      \
                                        T* sa, T* sb, const T* ca, const T* cb, long long n,            \
                                        long long tiles, int mode) {                                    \
        run_grid(grid, block, [=] { scan_affine_##S(a, b, ya, yb, sa, sb, ca, cb, n, tiles, mode); });  \
    }

RUN_ADD(float, f32)
RUN_ADD(double, f64)
RUN_AFFINE(float, f32)
RUN_AFFINE(double, f64)
