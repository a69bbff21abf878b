// The spiking engine's per-step CUDA kernels (neuro.device_engine): LIF and conductance-based LIF updates,
// event-driven CSR spike propagation with per-synapse delays (static and Tsodyks-Markram) into the (L, B, N)
// ring buffers, and Poisson inputs drawn from Philox (philox.cuh). One thread per (trial, neuron): the trials
// of a batch run in parallel.
//
// Each kernel does the arithmetic of its numba twin (neuro/neurons.py, neuro/synapses.py, neuro/inputs.py) in
// the same order and precision: state of type T, parameters double, intermediate values double. Products and
// sums go through the _rn intrinsics so that nvcc cannot contract them into FMAs (which round once where the
// CPU rounds twice). Every exp is exp64 below, neuro.exp64's arithmetic. What still differs from the CPU: the
// Poisson log() (CUDA's is within 1 ulp of libm's) and the order in which atomicAdd sums the inputs that reach
// one neuron in one step.
#include "philox.cuh"

namespace {

__device__ __forceinline__ double dadd(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double dsub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double dmul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double ddiv(double a, double b) { return __ddiv_rn(a, b); }
// a + b in the state's precision (the CPU adds two float32 state values in float32)
__device__ __forceinline__ float tadd(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double tadd(double a, double b) { return __dadd_rn(a, b); }

// exp(x) as neuro.exp64.exp: clamp to [-708, 708], k = round(x / ln 2) by the 1.5 * 2^52 shifter, the two-part
// ln 2 reduction, the Taylor polynomial to r^13 in Horner form, 2^k from the shifter sum's low bits.
__device__ __forceinline__ double exp64(double x) {
    x = x < -708.0 ? -708.0 : (x > 708.0 ? 708.0 : x);  // NaN passes through
    const double shifter = 6755399441055744.0;
    const double t = dadd(dmul(x, 1.4426950408889634), shifter);
    const double k = dsub(t, shifter);
    const double r = dsub(dsub(x, dmul(k, 6.93147180369123816490e-01)), dmul(k, 1.90821492927058770002e-10));
    const double c[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                          1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
    double p = c[0];
#pragma unroll
    for (int n = 1; n < 14; ++n) p = dadd(dmul(p, r), c[n]);
    const long long bits = (__double_as_longlong(t) - 0x4338000000000000LL + 1023LL) << 52;
    return dmul(p, __longlong_as_double(bits));
}

__device__ __forceinline__ long long thread_index() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long thread_stride() { return (long long)blockDim.x * gridDim.x; }

// Spike test, reset and refractory start shared by both LIF kernels; writes v, spikes, last_spike.
template <typename T>
__device__ __forceinline__ void fire(T* v, bool* spikes, long long* last_spike, long long idx, double vk,
                                     bool active, double v_th, double v_reset, long long step) {
    const bool s = active && vk > v_th;
    spikes[idx] = s;
    if (s) {
        vk = v_reset;
        last_spike[idx] = step;
    }
    v[idx] = (T)vk;
}

// One LIF step of (B, N) neurons in place: neuro.neurons.lif_step_reference / _lif_step_loop.
template <typename T>
__device__ void lif_step(T* v, T* I_e, T* I_i, const T* I_ext, long long* last_spike, const long long step,
                         const long long* ref_steps, const double* E_L, const double* R, const double* I_bg,
                         const double* v_th, const double* v_reset, const double* decay_m, const double* decay_e,
                         const double* decay_i, bool* spikes, const long long B, const long long N) {
    for (long long idx = thread_index(); idx < B * N; idx += thread_stride()) {
        const long long k = idx % N;
        const bool active = (step - last_spike[idx]) >= ref_steps[k];
        double vk = (double)v[idx];
        if (active) {
            const double I = dadd(dadd((double)tadd(I_e[idx], I_i[idx]), I_bg[k]), (double)I_ext[idx]);
            const double v_inf = dadd(E_L[k], dmul(R[k], I));
            vk = dadd(v_inf, dmul(dsub(vk, v_inf), decay_m[k]));
        }
        I_e[idx] = (T)dmul((double)I_e[idx], decay_e[k]);
        I_i[idx] = (T)dmul((double)I_i[idx], decay_i[k]);
        fire(v, spikes, last_spike, idx, vk, active, v_th[k], v_reset[k], step);
    }
}

// One conductance-based LIF step in place: neuro.neurons.lif_cond_step_reference / lif_cond_v.
template <typename T>
__device__ void lif_cond_step(T* v, T* g_e, T* g_i, const T* I_ext, long long* last_spike, const long long step,
                              const long long* ref_steps, const double* E_L, const double* R, const double* I_bg,
                              const double* E_e, const double* E_i, const double* v_th, const double* v_reset,
                              const double* dt_tau, const double* decay_e, const double* decay_i, bool* spikes,
                              const long long B, const long long N) {
    for (long long idx = thread_index(); idx < B * N; idx += thread_stride()) {
        const long long k = idx % N;
        const bool active = (step - last_spike[idx]) >= ref_steps[k];
        double vk = (double)v[idx];
        if (active) {
            const T ge = g_e[idx], gi = g_i[idx];
            const double I = dadd(I_bg[k], (double)I_ext[idx]);
            const double a = dadd(1.0, dmul(R[k], (double)tadd(ge, gi)));
            const double drive = dadd(dadd(dmul((double)ge, E_e[k]), dmul((double)gi, E_i[k])), I);
            const double v_inf = ddiv(dadd(E_L[k], dmul(R[k], drive)), a);
            vk = dadd(v_inf, dmul(dsub(vk, v_inf), exp64(dmul(-dt_tau[k], a))));
        }
        g_e[idx] = (T)dmul((double)g_e[idx], decay_e[k]);
        g_i[idx] = (T)dmul((double)g_i[idx], decay_i[k]);
        fire(v, spikes, last_spike, idx, vk, active, v_th[k], v_reset[k], step);
    }
}

// Static synapses: every synapse s of a spiking (trial b, neuron i) adds w[s] to
// buf[(step + delay[s]) % L, b, post[s]].
template <typename T>
__device__ void propagate(const bool* spikes, const long long* indptr, const long long* post, const double* w,
                          const long long* delay, T* buf, const long long step, const long long L, const long long B,
                          const long long n_pre, const long long n_post) {
    for (long long idx = thread_index(); idx < B * n_pre; idx += thread_stride()) {
        if (!spikes[idx]) continue;
        const long long b = idx / n_pre, i = idx % n_pre;
        for (long long s = indptr[i]; s < indptr[i + 1]; ++s) {
            const long long slot = (step + delay[s]) % L;
            atomicAdd(&buf[(slot * B + b) * n_post + post[s]], (T)w[s]);
        }
    }
}

// Tsodyks-Markram synapses: as propagate, with the amplitude w u_n R_n after the update of the per-trial
// state u, R (B, S) and last (B, S) (neuro.synapses.tm_spike). The thread of (b, i) alone touches the state
// of row i in trial b, so the updates do not race.
template <typename T>
__device__ void propagate_tm(const bool* spikes, const long long* indptr, const long long* post, const double* w,
                             const long long* delay, const double* U, const double* D, const double* F, T* u, T* R,
                             long long* last, T* buf, const long long step, const double dt, const long long L,
                             const long long B, const long long n_pre, const long long n_post, const long long S) {
    for (long long idx = thread_index(); idx < B * n_pre; idx += thread_stride()) {
        if (!spikes[idx]) continue;
        const long long b = idx / n_pre, i = idx % n_pre;
        for (long long s = indptr[i]; s < indptr[i + 1]; ++s) {
            const long long bs = b * S + s;
            const double isi = dmul((double)(step - last[bs]), dt);
            const double u_old = (double)u[bs], R_old = (double)R[bs];
            const double R_new = dadd(1.0, dmul(dsub(dsub(R_old, dmul(u_old, R_old)), 1.0), exp64(ddiv(-isi, D[s]))));
            const double u_new = dadd(U[s], dmul(dmul(u_old, dsub(1.0, U[s])), exp64(ddiv(-isi, F[s]))));
            u[bs] = (T)u_new;
            R[bs] = (T)R_new;
            last[bs] = step;
            const long long slot = (step + delay[s]) % L;
            atomicAdd(&buf[(slot * B + b) * n_post + post[s]], (T)dmul(w[s], dmul(u_new, R_new)));
        }
    }
}

// Poisson inputs: the spikes of `step` (B, n); a spiking (b, i) draws its next interval from the stream of trial
// b (keys (B, 2)), counter (draws[b, i], i) (neuro.inputs.poisson_advance).
__device__ void poisson_advance(const unsigned long long* keys, const double* log_q, long long* draws,
                                long long* next_step, const long long step, bool* spikes, const long long B,
                                const long long n) {
    for (long long idx = thread_index(); idx < B * n; idx += thread_stride()) {
        const bool s = next_step[idx] == step;
        spikes[idx] = s;
        if (s) {
            const long long b = idx / n;
            next_step[idx] = step + neuro_philox::poisson_isi(keys[2 * b], keys[2 * b + 1], idx % n, draws[idx],
                                                              log_q[idx]);
            draws[idx] += 1;
        }
    }
}

}  // namespace

extern "C" __global__ void spiking_lif_step_f32(float* v, float* I_e, float* I_i, const float* I_ext,
                                                long long* last_spike, const long long step, const long long* ref_steps,
                                                const double* E_L, const double* R, const double* I_bg,
                                                const double* v_th, const double* v_reset, const double* decay_m,
                                                const double* decay_e, const double* decay_i, bool* spikes,
                                                const long long B, const long long N) {
    lif_step<float>(v, I_e, I_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, v_th, v_reset, decay_m, decay_e,
                    decay_i, spikes, B, N);
}

extern "C" __global__ void spiking_lif_step_f64(double* v, double* I_e, double* I_i, const double* I_ext,
                                                long long* last_spike, const long long step, const long long* ref_steps,
                                                const double* E_L, const double* R, const double* I_bg,
                                                const double* v_th, const double* v_reset, const double* decay_m,
                                                const double* decay_e, const double* decay_i, bool* spikes,
                                                const long long B, const long long N) {
    lif_step<double>(v, I_e, I_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, v_th, v_reset, decay_m, decay_e,
                     decay_i, spikes, B, N);
}

extern "C" __global__ void spiking_lif_cond_step_f32(float* v, float* g_e, float* g_i, const float* I_ext,
                                                     long long* last_spike, const long long step,
                                                     const long long* ref_steps, const double* E_L, const double* R,
                                                     const double* I_bg, const double* E_e, const double* E_i,
                                                     const double* v_th, const double* v_reset, const double* dt_tau,
                                                     const double* decay_e, const double* decay_i, bool* spikes,
                                                     const long long B, const long long N) {
    lif_cond_step<float>(v, g_e, g_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, E_e, E_i, v_th, v_reset,
                         dt_tau, decay_e, decay_i, spikes, B, N);
}

extern "C" __global__ void spiking_lif_cond_step_f64(double* v, double* g_e, double* g_i, const double* I_ext,
                                                     long long* last_spike, const long long step,
                                                     const long long* ref_steps, const double* E_L, const double* R,
                                                     const double* I_bg, const double* E_e, const double* E_i,
                                                     const double* v_th, const double* v_reset, const double* dt_tau,
                                                     const double* decay_e, const double* decay_i, bool* spikes,
                                                     const long long B, const long long N) {
    lif_cond_step<double>(v, g_e, g_i, I_ext, last_spike, step, ref_steps, E_L, R, I_bg, E_e, E_i, v_th, v_reset,
                          dt_tau, decay_e, decay_i, spikes, B, N);
}

extern "C" __global__ void spiking_propagate_f32(const bool* spikes, const long long* indptr, const long long* post,
                                                 const double* w, const long long* delay, float* buf,
                                                 const long long step, const long long L, const long long B,
                                                 const long long n_pre, const long long n_post) {
    propagate<float>(spikes, indptr, post, w, delay, buf, step, L, B, n_pre, n_post);
}

extern "C" __global__ void spiking_propagate_f64(const bool* spikes, const long long* indptr, const long long* post,
                                                 const double* w, const long long* delay, double* buf,
                                                 const long long step, const long long L, const long long B,
                                                 const long long n_pre, const long long n_post) {
    propagate<double>(spikes, indptr, post, w, delay, buf, step, L, B, n_pre, n_post);
}

extern "C" __global__ void spiking_propagate_tm_f32(const bool* spikes, const long long* indptr, const long long* post,
                                                    const double* w, const long long* delay, const double* U,
                                                    const double* D, const double* F, float* u, float* R,
                                                    long long* last, float* buf, const long long step, const double dt,
                                                    const long long L, const long long B, const long long n_pre,
                                                    const long long n_post, const long long S) {
    propagate_tm<float>(spikes, indptr, post, w, delay, U, D, F, u, R, last, buf, step, dt, L, B, n_pre, n_post, S);
}

extern "C" __global__ void spiking_propagate_tm_f64(const bool* spikes, const long long* indptr, const long long* post,
                                                    const double* w, const long long* delay, const double* U,
                                                    const double* D, const double* F, double* u, double* R,
                                                    long long* last, double* buf, const long long step, const double dt,
                                                    const long long L, const long long B, const long long n_pre,
                                                    const long long n_post, const long long S) {
    propagate_tm<double>(spikes, indptr, post, w, delay, U, D, F, u, R, last, buf, step, dt, L, B, n_pre, n_post, S);
}

// The Poisson kernel has no floating state: both names run the same code (the registry's dtype convention).
extern "C" __global__ void spiking_poisson_advance_f32(const unsigned long long* keys, const double* log_q,
                                                       long long* draws, long long* next_step, const long long step,
                                                       bool* spikes, const long long B, const long long n) {
    poisson_advance(keys, log_q, draws, next_step, step, spikes, B, n);
}

extern "C" __global__ void spiking_poisson_advance_f64(const unsigned long long* keys, const double* log_q,
                                                       long long* draws, long long* next_step, const long long step,
                                                       bool* spikes, const long long B, const long long n) {
    poisson_advance(keys, log_q, draws, next_step, step, spikes, B, n);
}
