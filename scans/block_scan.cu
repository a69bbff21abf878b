// Work-efficient (Blelloch) prefix scans on the GPU, for `add` and `affine`,
// float32 and float64, batched over rows.
//
// Layout: R independent rows of n elements each, contiguous: x[row * n + i].
// One thread block scans one tile of TILE = 2 * BLOCK elements of one row
// (block index = row * tiles_per_row + tile), in shared memory:
//
//   * up-sweep (reduce) and exclusive down-sweep as in Blelloch (1990) and
//     GPU Gems 3, ch. 39, with one padding word every NUM_BANKS words
//     (CONFLICT_FREE_OFFSET) so that the tree's strided accesses do not
//     collide on shared-memory banks;
//   * inclusive result = combine(exclusive prefix, own element).
//
// Any length and any number of tiles is handled by the host (scans/gpu.py)
// as a hierarchical "reduce, scan the block sums, scan again with carries"
// scheme, using the mode bits of one kernel:
//
//   MODE_WRITE_SUMS  write each tile's total to block_sums[block]
//   MODE_WRITE_Y     write the inclusive scan of the tile to y
//   MODE_USE_CARRY   combine carry[block] (the exclusive prefix of all
//                    earlier tiles of the row) in front of every output;
//                    the first tile of a row takes no carry (its prefix is
//                    the identity, whatever carry[block] holds)
//   MODE_WRITE_A     (affine only) also write the `a` part of the scan
//
// Pass 1 (MODE_WRITE_SUMS) reads the input once; the block sums are scanned
// recursively (they are a smaller batch of rows); pass 2
// (MODE_WRITE_Y | MODE_USE_CARRY) reads the input again and writes the
// result once. A single-tile row needs only pass 2 without carries.
//
// affine elements are maps h -> a*h + b; combine(first, second) applies
// first, then second: (a2*a1, a2*b1 + b2). The identity map is flagged and
// combined exactly (combine(identity, y) = y): the arithmetic identity (1, 0)
// is not one in IEEE floats, since y.a * 0 is NaN when y.a is infinite.

#define NUM_BANKS 32
#define LOG_NUM_BANKS 5
#define CONFLICT_FREE_OFFSET(n) ((n) >> LOG_NUM_BANKS)

#define MODE_WRITE_SUMS 1
#define MODE_WRITE_Y 2
#define MODE_USE_CARRY 4
#define MODE_WRITE_A 8

constexpr int BLOCK = 256;                 // threads per block (must match scans/gpu.py)
constexpr int TILE = 2 * BLOCK;            // elements per block
constexpr int SMEM = TILE + CONFLICT_FREE_OFFSET(TILE - 1) + 1;  // padded shared array

template <typename T>
struct AddOp {
    using E = T;
    __device__ static E identity() { return T(0); }
    __device__ static E combine(const E& x, const E& y) { return x + y; }
};

template <typename T>
struct Map {  // h -> a*h + b, or the identity map when `identity` is set
    T a;
    T b;
    bool identity;
};

template <typename T>
struct AffineOp {
    using E = Map<T>;
    __device__ static E identity() { return E{T(1), T(0), true}; }
    __device__ static E combine(const E& x, const E& y) {
        if (x.identity) return y;
        if (y.identity) return x;
        return E{y.a * x.a, y.a * x.b + y.b, false};
    }
};

__device__ __forceinline__ int padded(int i) { return i + CONFLICT_FREE_OFFSET(i); }

// Exclusive scan of the TILE elements in `temp` (padded indexing), in place.
// Returns the tile's total to thread 0 (other threads get an unspecified value).
// Ends with __syncthreads(), so every thread may read `temp` afterwards.
template <class Op>
__device__ typename Op::E block_exclusive_scan(typename Op::E* temp) {
    using E = typename Op::E;
    const int thid = threadIdx.x;
    int offset = 1;
    // up-sweep: build the reduction tree in place
    for (int d = TILE >> 1; d > 0; d >>= 1) {
        __syncthreads();
        if (thid < d) {
            const int ai = padded(offset * (2 * thid + 1) - 1);
            const int bi = padded(offset * (2 * thid + 2) - 1);
            temp[bi] = Op::combine(temp[ai], temp[bi]);
        }
        offset <<= 1;
    }
    E total = Op::identity();
    if (thid == 0) {
        const int last = padded(TILE - 1);
        total = temp[last];
        temp[last] = Op::identity();  // clear the root
    }
    // down-sweep: each node passes its prefix to its left child and
    // prefix (+) left-subtree-total to its right child
    for (int d = 1; d < TILE; d <<= 1) {
        offset >>= 1;
        __syncthreads();
        if (thid < d) {
            const int ai = padded(offset * (2 * thid + 1) - 1);
            const int bi = padded(offset * (2 * thid + 2) - 1);
            const E left = temp[ai];
            temp[ai] = temp[bi];
            temp[bi] = Op::combine(temp[bi], left);
        }
    }
    __syncthreads();
    return total;
}

// ------------------------------------------------------------------- add

template <typename T>
__device__ void scan_add(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ block_sums,
                         const T* __restrict__ carry, const long long n, const long long tiles_per_row,
                         const int mode) {
    using Op = AddOp<T>;
    __shared__ T temp[SMEM];
    const long long block = blockIdx.x;
    const long long row = block / tiles_per_row;
    const long long start = (block % tiles_per_row) * TILE;
    const long long remaining = n - start;  // > 0
    const T* xr = x + row * n + start;
    const int i0 = threadIdx.x;
    const int i1 = threadIdx.x + BLOCK;
    const T v0 = i0 < remaining ? xr[i0] : Op::identity();
    const T v1 = i1 < remaining ? xr[i1] : Op::identity();
    temp[padded(i0)] = v0;
    temp[padded(i1)] = v1;
    const T total = block_exclusive_scan<Op>(temp);
    if ((mode & MODE_WRITE_SUMS) && threadIdx.x == 0) block_sums[block] = total;
    if (mode & MODE_WRITE_Y) {
        const bool carried = (mode & MODE_USE_CARRY) && (block % tiles_per_row) != 0;
        const T prefix = carried ? carry[block] : Op::identity();
        T* yr = y + row * n + start;
        if (i0 < remaining) yr[i0] = Op::combine(prefix, Op::combine(temp[padded(i0)], v0));
        if (i1 < remaining) yr[i1] = Op::combine(prefix, Op::combine(temp[padded(i1)], v1));
    }
}

// ---------------------------------------------------------------- affine

template <typename T>
__device__ void scan_affine(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ ya,
                            T* __restrict__ yb, T* __restrict__ sums_a, T* __restrict__ sums_b,
                            const T* __restrict__ carry_a, const T* __restrict__ carry_b, const long long n,
                            const long long tiles_per_row, const int mode) {
    using Op = AffineOp<T>;
    using E = typename Op::E;
    __shared__ E temp[SMEM];
    const long long block = blockIdx.x;
    const long long row = block / tiles_per_row;
    const long long start = (block % tiles_per_row) * TILE;
    const long long remaining = n - start;  // > 0
    const long long base = row * n + start;
    const int i0 = threadIdx.x;
    const int i1 = threadIdx.x + BLOCK;
    const E v0 = i0 < remaining ? E{a[base + i0], b[base + i0], false} : Op::identity();
    const E v1 = i1 < remaining ? E{a[base + i1], b[base + i1], false} : Op::identity();
    temp[padded(i0)] = v0;
    temp[padded(i1)] = v1;
    const E total = block_exclusive_scan<Op>(temp);
    if ((mode & MODE_WRITE_SUMS) && threadIdx.x == 0) {
        sums_a[block] = total.a;
        sums_b[block] = total.b;
    }
    if (mode & MODE_WRITE_Y) {
        const bool carried = (mode & MODE_USE_CARRY) && (block % tiles_per_row) != 0;
        const E prefix = carried ? E{carry_a[block], carry_b[block], false} : Op::identity();
        if (i0 < remaining) {
            const E out = Op::combine(prefix, Op::combine(temp[padded(i0)], v0));
            yb[base + i0] = out.b;
            if (mode & MODE_WRITE_A) ya[base + i0] = out.a;
        }
        if (i1 < remaining) {
            const E out = Op::combine(prefix, Op::combine(temp[padded(i1)], v1));
            yb[base + i1] = out.b;
            if (mode & MODE_WRITE_A) ya[base + i1] = out.a;
        }
    }
}

// ------------------------------------------------------- entry points

extern "C" __global__ void __launch_bounds__(BLOCK)
scan_add_f32(const float* x, float* y, float* block_sums, const float* carry, const long long n,
             const long long tiles_per_row, const int mode) {
    scan_add<float>(x, y, block_sums, carry, n, tiles_per_row, mode);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
scan_add_f64(const double* x, double* y, double* block_sums, const double* carry, const long long n,
             const long long tiles_per_row, const int mode) {
    scan_add<double>(x, y, block_sums, carry, n, tiles_per_row, mode);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
scan_affine_f32(const float* a, const float* b, float* ya, float* yb, float* sums_a, float* sums_b,
                const float* carry_a, const float* carry_b, const long long n, const long long tiles_per_row,
                const int mode) {
    scan_affine<float>(a, b, ya, yb, sums_a, sums_b, carry_a, carry_b, n, tiles_per_row, mode);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
scan_affine_f64(const double* a, const double* b, double* ya, double* yb, double* sums_a, double* sums_b,
                const double* carry_a, const double* carry_b, const long long n, const long long tiles_per_row,
                const int mode) {
    scan_affine<double>(a, b, ya, yb, sums_a, sums_b, carry_a, carry_b, n, tiles_per_row, mode);
}
