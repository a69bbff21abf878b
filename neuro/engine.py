"""The fused fast path of :meth:`neuro.Network.run`: many steps in one numba call.

The step-by-step engine (:meth:`neuro.Network._tick`) calls one kernel per
population and per projection each step, which costs Python overhead per
step. When a network qualifies (all populations LIF or LIFCond, numba
kernels, no hooks, no current waveforms, state monitors of ``v`` and the
synaptic state only),
``run`` instead gathers the whole network into flat arrays (populations
concatenated; projections concatenated with offsets, so each keeps its own
CSR) and advances chunks of steps in :func:`_run_chunk`, one numba call per
chunk, then scatters the state back and hands each monitor the chunk's
spike raster. Inputs are drawn per chunk by the same code and in the same
order as step by step, and every trial performs the same floating-point
operations in the same order as the step-by-step engine, so the two give
identical results (tested).
"""

from __future__ import annotations

import numba
import numpy as np

from .monitors import StateMonitor
from .neurons import LIF, LIFCond, lif_cond_v
from .synapses import tm_spike

__all__ = ["eligible", "run_fused"]

_FUSED_VARS = ("v", "I_e", "I_i", "g_e", "g_i")
_RASTER_BUDGET = 1 << 24  # bools per chunk raster (K * B * N)


@numba.njit(cache=True, nogil=True)
def _run_chunk(K, step0, dt, v, I_e, I_i, last, I_ext, ref_steps, E_L, R, I_bg, v_th, v_reset, decay_m, decay_e,
               decay_i, cond, E_e, E_i, dt_tau, src_spk, p_pre_off, p_n_pre, p_ptr_off, p_syn_off, p_post_off,
               p_exc, p_tm_off, indptr, post, w, delay, U, D, F, u, Rr, last_tm, buf_e, buf_i, out_spk, rec_idx,
               rec_v, rec_e, rec_i):
    B, N = v.shape
    any_cond = cond.any()
    n_src = src_spk.shape[2]
    L = buf_e.shape[0]
    P = p_pre_off.shape[0]
    M = rec_idx.shape[0]
    for b in numba.prange(B):  # trials are independent (a plain loop unless compiled with parallel=True)
        zero = np.zeros(N, v.dtype)  # the empty "previous slot" at the chunk's first step
        fired = np.empty(N + n_src, np.int64)  # global indices of this step's spikes
        vb, Ieb, Iib, lb, Ixb = v[b], I_e[b], I_i[b], last[b], I_ext[b]
        for k in range(K):
            step = step0 + k
            # the input that arrived at the previous step is added here, in the neuron loop, rather than
            # in a pass of its own at the end of that step (the same additions; the chunk's last step
            # delivers at the end)
            prev = (step - 1) % L
            be, bi = buf_e[prev, b], buf_i[prev, b]
            if k == 0:
                be, bi = zero, zero
            for m in range(M):
                rec_v[k, b, m] = vb[rec_idx[m]]
                rec_e[k, b, m] = Ieb[rec_idx[m]] + be[rec_idx[m]]
                rec_i[k, b, m] = Iib[rec_idx[m]] + bi[rec_idx[m]]
            # neurons: the LIF step of neuro.neurons, written without branches
            ob = out_spk[k, b]
            if not any_cond:  # all current-based: the branch-free loop (vectorizes)
                for n in range(N):
                    Ie = Ieb[n] + be[n]
                    Ii = Iib[n] + bi[n]
                    be[n] = 0.0
                    bi[n] = 0.0
                    ls = lb[n]
                    active = (step - ls) >= ref_steps[n]
                    vn = vb[n]
                    v_inf = E_L[n] + R[n] * (Ie + Ii + I_bg[n] + Ixb[n])
                    v_new = v_inf + (vn - v_inf) * decay_m[n]
                    vn = v_new if active else vn
                    s = active & (vn > v_th[n])
                    ob[n] = s
                    vb[n] = v_reset[n] if s else vn
                    lb[n] = step if s else ls
                    Ieb[n] = Ie * decay_e[n]
                    Iib[n] = Ii * decay_i[n]
            else:  # the same, with the conductance-based (LIFCond) neurons' v from lif_cond_v (Ie, Ii are g_e, g_i)
                for n in range(N):
                    Ie = Ieb[n] + be[n]
                    Ii = Iib[n] + bi[n]
                    be[n] = 0.0
                    bi[n] = 0.0
                    ls = lb[n]
                    active = (step - ls) >= ref_steps[n]
                    vn = vb[n]
                    if cond[n]:
                        v_new = lif_cond_v(vn, Ie, Ii, I_bg[n] + Ixb[n], E_L[n], R[n], E_e[n], E_i[n], dt_tau[n])
                    else:
                        v_inf = E_L[n] + R[n] * (Ie + Ii + I_bg[n] + Ixb[n])
                        v_new = v_inf + (vn - v_inf) * decay_m[n]
                    vn = v_new if active else vn
                    s = active & (vn > v_th[n])
                    ob[n] = s
                    vb[n] = v_reset[n] if s else vn
                    lb[n] = step if s else ls
                    Ieb[n] = Ie * decay_e[n]
                    Iib[n] = Ii * decay_i[n]
            n_fired = 0
            for n in range(N):
                if out_spk[k, b, n]:
                    fired[n_fired] = n
                    n_fired += 1
            for n in range(n_src):
                if src_spk[k, b, n]:
                    fired[n_fired] = N + n
                    n_fired += 1
            # projections, in network order: the CSR rows of this step's spikes
            for p in range(P):
                lo = p_pre_off[p]
                hi = lo + p_n_pre[p]
                tm_off = p_tm_off[p]
                for f in range(n_fired):
                    g = fired[f]
                    if g < lo or g >= hi:
                        continue
                    row = p_ptr_off[p] + g - lo
                    for s in range(indptr[row], indptr[row + 1]):
                        sg = p_syn_off[p] + s
                        amp = w[sg]
                        if tm_off >= 0:
                            amp = amp * tm_spike(U, D, F, u, Rr, last_tm, b, tm_off + s, step, dt)
                        slot = (step + delay[sg]) % L
                        tgt = p_post_off[p] + post[sg]
                        if p_exc[p]:
                            buf_e[slot, b, tgt] += amp
                        else:
                            buf_i[slot, b, tgt] += amp
        # deliver what arrived at the chunk's last step
        slot = (step0 + K - 1) % L
        be, bi = buf_e[slot, b], buf_i[slot, b]
        for n in range(N):
            Ieb[n] += be[n]
            be[n] = 0.0
            Iib[n] += bi[n]
            bi[n] = 0.0


_run_chunk_parallel = None


def _parallel_kernel():
    """:func:`_run_chunk` compiled with ``parallel=True`` (trials on numba's threads), on first use.

    Not cached on disk: numba's cache index would not tell it from the serial version.
    """
    global _run_chunk_parallel
    if _run_chunk_parallel is None:
        _run_chunk_parallel = numba.njit(nogil=True, parallel=True)(_run_chunk.py_func)
    return _run_chunk_parallel


def eligible(net) -> bool:
    """Whether ``net.run`` can use the fused path."""
    if net.impl != "cpu" or net.hooks or not net.populations:
        return False
    for pop in net.populations:
        if not isinstance(pop.model, LIF) or any(not c.constant for c in pop.currents):
            return False
    for mon in net.monitors:
        if isinstance(mon, StateMonitor) and any(v not in _FUSED_VARS for v in mon.variables):
            return False
    return True


def _cat(arrays, dtype, axis=0):
    arrays = list(arrays)
    if not arrays:
        return np.zeros(0, dtype)
    return np.ascontiguousarray(np.concatenate(arrays, axis=axis), dtype=dtype)


def run_fused(net, n_steps: int) -> None:
    """Advance ``net`` (eligible, reset) by ``n_steps`` steps with :func:`_run_chunk`."""
    pops, sources, projs = net.populations, net.sources, net.projections
    B = net.batch_size
    offsets, off = {}, 0
    for pop in pops:
        offsets[id(pop)] = off
        off += pop.n
    N = off
    src_off = {}
    for src in sources:
        src_off[id(src)] = off
        off += src.n
    n_src = off - N

    # gather neurons; the synaptic state (currents I_e, I_i or conductances g_e, g_i) goes into I_e, I_i
    dtype = net.dtype
    v = _cat((pop.state["v"] for pop in pops), dtype, axis=1)
    I_e, I_i = (_cat((pop.state[pop.model.synaptic_vars[k]] for pop in pops), dtype, axis=1) for k in (0, 1))
    last = _cat((pop.state["last_spike"] for pop in pops), np.int64, axis=1)
    I_ext = _cat((pop._I_const for pop in pops), dtype, axis=1)
    par = {k: _cat((pop.params[k] for pop in pops), np.float64) for k in ("E_L", "R", "I_bg", "v_th", "v_reset")}
    ref_steps = _cat((pop._ref_steps for pop in pops), np.int64)
    is_cond = [isinstance(pop.model, LIFCond) for pop in pops]
    cond = _cat((np.full(pop.n, c) for pop, c in zip(pops, is_cond)), np.bool_)
    nan = lambda pop: np.full(pop.n, np.nan)  # noqa: E731  (the unused parameters of the other kind)
    decay_m = _cat((nan(pop) if c else pop._decay_m for pop, c in zip(pops, is_cond)), np.float64)
    dt_tau = _cat((pop._dt_tau if c else nan(pop) for pop, c in zip(pops, is_cond)), np.float64)
    E_e, E_i = (_cat((pop.params[k] if c else nan(pop) for pop, c in zip(pops, is_cond)), np.float64)
                for k in ("E_e", "E_i"))
    decay_e = _cat((pop._decay_e for pop in pops), np.float64)
    decay_i = _cat((pop._decay_i for pop in pops), np.float64)
    buf_e = _cat((pop._buf["exc"] for pop in pops), dtype, axis=2)
    buf_i = _cat((pop._buf["inh"] for pop in pops), dtype, axis=2)

    # gather projections
    pre_offset = lambda pr: offsets[id(pr.pre)] if id(pr.pre) in offsets else src_off[id(pr.pre)]
    p_pre_off = np.array([pre_offset(pr) for pr in projs], np.int64)
    p_n_pre = np.array([pr.pre.n for pr in projs], np.int64)
    p_ptr_off = np.cumsum([0] + [pr.pre.n + 1 for pr in projs])[:-1].astype(np.int64)
    p_syn_off = np.cumsum([0] + [pr.n_synapses for pr in projs])[:-1].astype(np.int64)
    p_post_off = np.array([offsets[id(pr.post)] for pr in projs], np.int64)
    p_exc = np.array([pr.receptor == "exc" for pr in projs], np.bool_)
    tm = [pr for pr in projs if pr.dynamic]
    tm_off, acc = [], 0
    for pr in projs:
        tm_off.append(acc if pr.dynamic else -1)
        acc += pr.n_synapses if pr.dynamic else 0
    p_tm_off = np.array(tm_off, np.int64)
    indptr = _cat((pr.indptr for pr in projs), np.int64)
    post = _cat((pr.j for pr in projs), np.int64)
    w = _cat((pr.w for pr in projs), np.float64)
    delay = _cat((pr.delay_steps for pr in projs), np.int64)
    U, D, F = (_cat((getattr(pr, k) for pr in tm), np.float64) for k in ("U", "D", "F"))
    u = _cat((pr.u for pr in tm), dtype, axis=1) if tm else np.zeros((B, 0), dtype)
    Rr = _cat((pr.R for pr in tm), dtype, axis=1) if tm else np.zeros((B, 0), dtype)
    last_tm = _cat((pr.last for pr in tm), np.int64, axis=1) if tm else np.zeros((B, 0), np.int64)

    # state monitors: record the union of their neurons
    state_mons = [m for m in net.monitors if isinstance(m, StateMonitor)]
    rec = sorted({offsets[id(m.source)] + int(i) for m in state_mons for i in m.indices})
    rec_idx = np.array(rec, np.int64)
    rec_pos = {g: k for k, g in enumerate(rec)}

    K_max = int(max(1, min(2048, _RASTER_BUDGET // max(1, B * max(N, 1)))))
    if len(rec_idx):
        K_max = int(max(1, min(K_max, _RASTER_BUDGET // (B * len(rec_idx) * 8))))
    kernel = _parallel_kernel() if net.parallel and B > 1 else _run_chunk
    done = 0
    while done < n_steps:
        K = min(K_max, n_steps - done)
        step0 = net._step
        src_spk = np.zeros((K, B, n_src), dtype=bool)
        for src in sources:
            o = src_off[id(src)] - N
            src_spk[:, :, o:o + src.n] = src._chunk(step0, K)
        out_spk = np.empty((K, B, N), dtype=bool)
        M = len(rec_idx)
        rec_v, rec_e, rec_i = (np.empty((K, B, M), dtype) for _ in range(3))
        kernel(K, np.int64(step0), float(net.dt), v, I_e, I_i, last, I_ext, ref_steps, par["E_L"], par["R"],
               par["I_bg"], par["v_th"], par["v_reset"], decay_m, decay_e, decay_i, cond, E_e, E_i, dt_tau,
               src_spk, p_pre_off, p_n_pre, p_ptr_off, p_syn_off, p_post_off, p_exc, p_tm_off, indptr, post, w,
               delay, U, D, F, u, Rr, last_tm, buf_e, buf_i, out_spk, rec_idx, rec_v, rec_e, rec_i)
        rasters = {}
        for pop in pops:
            o = offsets[id(pop)]
            rasters[id(pop)] = out_spk[:, :, o:o + pop.n]
            pop.spikes[...] = rasters[id(pop)][-1]
        for src in sources:
            o = src_off[id(src)] - N
            rasters[id(src)] = src_spk[:, :, o:o + src.n]
        recorded = {"v": rec_v, "I_e": rec_e, "I_i": rec_i, "g_e": rec_e, "g_i": rec_i}
        for mon in net.monitors:
            if isinstance(mon, StateMonitor):
                cols = [rec_pos[offsets[id(mon.source)] + int(i)] for i in mon.indices]
                mon._record_chunk(step0, {var: recorded[var][:, :, cols] for var in mon.variables})
            else:
                mon._record_chunk(step0, rasters[id(mon.source)])
        net._step = step0 + K
        done += K

    # scatter the state back
    for pop in pops:
        o = offsets[id(pop)]
        sl = slice(o, o + pop.n)
        pop.state["v"][...] = v[:, sl]
        syn_e, syn_i = pop.model.synaptic_vars
        pop.state[syn_e][...] = I_e[:, sl]
        pop.state[syn_i][...] = I_i[:, sl]
        pop.state["last_spike"][...] = last[:, sl]
        pop._buf["exc"][...] = buf_e[:, :, sl]
        pop._buf["inh"][...] = buf_i[:, :, sl]
    for pr, o in zip(projs, tm_off):
        if o >= 0:
            sl = slice(o, o + pr.n_synapses)
            pr.u[...] = u[:, sl]
            pr.R[...] = Rr[:, sl]
            pr.last[...] = last_tm[:, sl]
