"""The fused engine of :meth:`neuro.Network.run`: many steps of a whole batch in one numba call.

The step-by-step engine (:meth:`neuro.Network._tick`) calls one kernel per
population and per projection each step. When a network qualifies
(populations of LIF or LIFCond neurons, static or Tsodyks-Markram
synapses with shared weights, Poisson or spike-time inputs, constant
injected currents, no hooks, state monitors of ``v`` and the synaptic
state only), ``run`` instead advances it in :func:`_run_steps`, which is
built for batches:

* **Batch innermost.** The state of a population is stored ``(N, B)``:
  the ``B`` trials of one neuron sit side by side, so the neuron update is
  one long vector loop over ``(neuron, trial)`` with the population's
  parameters held in registers (populations with per-neuron parameters
  are updated neuron by neuron, each a vector loop over the trials), and
  per-step costs (the step loop, delivery bookkeeping, monitors) are paid
  once per batch instead of once per trial. Refractoriness is a countdown
  of the steps left (one byte per entry where the refractory periods are
  under 256 steps), not the step of the last spike (eight bytes read and
  written per neuron-step); ``last_spike`` is set for the entries that spike.
* **Inputs inside the kernel.** Poisson inputs are drawn in the kernel
  from the counter-based generator of :mod:`neuro.philox`, one interval per
  spike, so their cost is per spike and each trial's trains are those it
  draws alone.
* **Spikes as events.** Each step's spikes form one sorted list of
  ``neuron * B + trial`` entries; monitors receive these events (step,
  trial, neuron), never dense rasters (rasters are built only for rate and
  trace monitors, from the events).
* **Delayed spikes, not delayed currents.** The last ``L`` steps' spike
  lists are kept (``L`` - 1 the longest delay in steps); at the end of
  step ``t`` each projection delivers the spikes of step ``t - d`` through
  its synapses of delay ``d`` into one arrival array ``(N, B)``. The
  target of the scattered additions is one step's worth of input, not a
  ring buffer of ``L`` steps, so it stays in cache for larger networks.
  Synapses are grouped by (projection, delay); groups deliver in order of
  spike step, then projection, then neuron, then synapse: the order in
  which the step-by-step engine adds into its ring buffer, so both engines
  give bit-identical results (tested). Tsodyks-Markram efficacies are
  computed at delivery from the spike's own step, which gives the same
  numbers.
* **Rows fetched ahead.** While one spike's synapse row is delivered, the
  row of the spike two places later is prefetched (:func:`neuro.intrinsics.prefetch`): in
  large networks the rows come from main memory, and several fetched at
  once hide most of the wait (targets are int32: 12 bytes per synapse; a
  group whose weights are all one number reads only the targets).
  Holding the additions in bins by target block, to be applied block by
  block, was slower (see docs/benchmarks/neuro.md).

Between ``run`` calls the pending input lives where the step-by-step engine
keeps it (the populations' ring buffers), so runs can be split and
engines mixed. The trials are advanced in groups whose per-step state fits
a core's cache, one group after another; with ``Network(parallel=True)``
the groups (at least one per numba thread) run on threads, each advanced
independently (no barrier per step).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .inputs import PoissonInput, SpikeTimes
from .intrinsics import prefetch
from .monitors import SpikeMonitor, StateMonitor
from .neurons import LIF, LIFCond, lif_cond_v
from .philox import poisson_isi
from .synapses import tm_spike

__all__ = ["eligible", "run_fused"]

_FUSED_VARS = ("v", "I_e", "I_i", "g_e", "g_i")
_RECORD_BUDGET = 1 << 24  # state-monitor values and rate/trace raster entries per chunk
_CHUNK = 2048  # entries updated before looking for spikes (256: 1.1-1.2x slower)
_SCAN = 64  # Poisson inputs scanned for this step's spikes before listing them
_TRIAL_BLOCK_BYTES = 1 << 18  # per-step state of one trial group: a group's state stays in a core's L2 cache
_EVENT_BUFFER = 1 << 18  # spike events a trial group's buffer holds at first (at least 4 per entry; doubled when full)
_PREFETCH_AHEAD = 2  # the synapse rows of the spike this many places ahead are fetched while a row is delivered


# ------------------------------------------------------------------ kernel


@numba.njit(cache=True, inline="always")
def _neuron_block(cond, x0, x1, v, se, si, left, I_ext, Ae, Ai, spk, ref, E_L, R, I_bg, a, E_e, E_i, v_th,
                  v_reset, decay_e, decay_i):
    """Update entries ``x0 .. x1`` of the flat (N, B) state with one neuron's (or population's) parameters.

    LIF (``a`` = ``decay_m``) or, with ``cond``, LIFCond (``a`` = ``dt / tau_m``), with the arithmetic of
    their step kernels. The input that arrived at the previous step (``Ae``, ``Ai``) is added here and
    cleared; ``spk`` gets the spikes; returns their number. ``I_ext`` of length 0: no injected current.
    ``left``: the steps of refractoriness left (``max(0, ref - (step - last_spike))``, the step kernels'
    test ``step - last_spike >= ref`` as ``left == 0``), counted down here: one byte per entry instead
    of the eight of ``last_spike``, which the caller sets for the entries that spike.
    Inlined into :func:`_lif_block` and :func:`_lif_cond_block` with ``cond`` a constant, so that each
    compiles only its own arithmetic.
    """
    # views indexed from 0: an index numba knows to be >= 0 needs no wraparound test, so the loop vectorizes
    v, se, si, left = v[x0:x1], se[x0:x1], si[x0:x1], left[x0:x1]
    Ae, Ai, spk = Ae[x0:x1], Ai[x0:x1], spk[x0:x1]
    has_ext = I_ext.shape[0] > 0
    ref_m1 = max(ref - 1, 0)  # left at the next step after a spike
    if has_ext:
        I_ext = I_ext[x0:x1]
    count = 0
    for x in range(x1 - x0):
        Ie = se[x] + Ae[x]
        Ii = si[x] + Ai[x]
        Ae[x] = 0.0
        Ai[x] = 0.0
        lx = left[x]
        active = lx == 0
        vn = v[x]
        I_x = I_ext[x] if has_ext else 0.0  # loop-invariant tests: the compiler makes one loop per case
        if cond:
            v_new = lif_cond_v(vn, Ie, Ii, I_bg + I_x, E_L, R, E_e, E_i, a)
        else:
            v_inf = E_L + R * (Ie + Ii + I_bg + I_x)
            v_new = v_inf + (vn - v_inf) * a
        vn = v_new if active else vn
        s = active & (vn > v_th)
        spk[x] = s
        count += s
        v[x] = v_reset if s else vn
        left[x] = ref_m1 if s else lx - (lx > 0)
        se[x] = Ie * decay_e
        si[x] = Ii * decay_i
    return count


# not inlined: compiled alone (division by zero not checked: a >= 1), their loops vectorize
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lif_block(x0, x1, v, se, si, left, I_ext, Ae, Ai, spk, ref, E_L, R, I_bg, a, E_e, E_i, v_th, v_reset,
               decay_e, decay_i):
    """:func:`_neuron_block` for LIF neurons."""
    return _neuron_block(False, x0, x1, v, se, si, left, I_ext, Ae, Ai, spk, ref, E_L, R, I_bg, a, E_e, E_i,
                         v_th, v_reset, decay_e, decay_i)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lif_cond_block(x0, x1, v, se, si, left, I_ext, Ae, Ai, spk, ref, E_L, R, I_bg, a, E_e, E_i, v_th, v_reset,
                    decay_e, decay_i):
    """:func:`_neuron_block` for conductance-based LIF neurons."""
    return _neuron_block(True, x0, x1, v, se, si, left, I_ext, Ae, Ai, spk, ref, E_L, R, I_bg, a, E_e, E_i,
                         v_th, v_reset, decay_e, decay_i)


@numba.njit(cache=True, inline="always")
def _append(flags, base, fired, nf, x0, x1):
    """Append ``base + x`` for every set ``flags[x]``, ``x0 <= x < x1``, to ``fired`` from ``nf`` (branch-free)."""
    for x in range(x0, x1):
        fired[nf] = base + x
        nf += flags[x]
    return nf


@numba.njit(cache=True, inline="always")
def _compact(flags, base, fired, nf):
    """Append ``base + x`` for every set ``flags[x]`` to ``fired`` from ``nf``; returns the new ``nf``.

    ``flags`` starts at entry ``base`` of an 8-byte aligned array. The flags
    are read eight at a time (aligned words): a word without a set flag is skipped.
    """
    n = flags.shape[0]
    h = min(n, -base & 7)  # up to the first aligned word
    n8 = h + ((n - h) & ~7)
    nf = _append(flags, base, fired, nf, 0, h)
    words = flags[h:n8].view(np.uint64)
    for w in range(words.shape[0]):
        if words[w]:
            nf = _append(flags, base, fired, nf, h + 8 * w, h + 8 * w + 8)
    return _append(flags, base, fired, nf, n8, n)


@numba.njit(cache=True, inline="always")
def _neuron(x, B):
    """The neuron of flat entry ``x = neuron * B + trial`` (no integer division for one trial)."""
    return x // B if B > 1 else x


@numba.njit(cache=True, inline="always")
def _prefetch_rows(e0, e1, one_w, w_off, e_post, e_w):
    """Prefetch the synapses ``e0 .. e1 - 1``: targets, and weights (from ``e0 + w_off``) unless ``one_w``,
    one cache line at a time."""
    for e in range(e0, e1, 64 // e_post.itemsize):
        prefetch(e_post, e)
    if not one_w:
        for e in range(e0 + w_off, e1 + w_off, 64 // e_w.itemsize):
            prefetch(e_w, e)


@numba.njit(cache=True, inline="always")
def _deliver(t, s_lo, s_hi, B, L, Ae, Ai, hist, hist_n, hist_step, groups, g_ptr, e_post, e_w, w_off, one_w, w_one,
             e_tm, U, D, F, u, Rr, last_tm, dt):
    """Add what arrives at step ``t`` from the spikes of steps ``s_lo .. s_hi - 1`` into ``Ae``/``Ai``.

    ``groups`` rows: (delay, first pre neuron (global), n_pre, offset into
    ``g_ptr``, inhibitory, dynamic, offset into ``e_tm``, projection), sorted by
    descending delay, then projection: each row's synapses are the CSR rows
    ``g_ptr`` over ``e_post`` and, for dynamic groups, ``e_tm`` (index of
    the Tsodyks-Markram synapse); entry ``e`` of group ``r`` has its weight
    at ``e_w[e + w_off[r]]``. ``one_w[r]``: all the weights of group ``r``
    are one number, ``w_one[r]`` (bit for bit), and none is read (4 bytes
    per event instead of 12).
    """
    for r in range(groups.shape[0]):
        s = t - groups[r, 0]
        if s < s_lo or s >= s_hi:
            continue
        slot = s % L
        if hist_step[slot] != s:
            continue
        entries = hist[slot, : hist_n[slot]]
        lo = np.searchsorted(entries, groups[r, 1] * B)
        hi = np.searchsorted(entries, (groups[r, 1] + groups[r, 2]) * B)
        ptr = groups[r, 3]
        target = Ai if groups[r, 4] else Ae
        dynamic = groups[r, 5]
        one, wo = one_w[r], w_off[r]
        for f in range(lo, min(hi, lo + _PREFETCH_AHEAD)):
            row = ptr + _neuron(entries[f], B) - groups[r, 1]
            _prefetch_rows(g_ptr[row], g_ptr[row + 1], one, wo, e_post, e_w)
        for f in range(lo, hi):
            if f + _PREFETCH_AHEAD < hi:  # rows from main memory: fetched ahead, several at once
                row = ptr + _neuron(entries[f + _PREFETCH_AHEAD], B) - groups[r, 1]
                _prefetch_rows(g_ptr[row], g_ptr[row + 1], one, wo, e_post, e_w)
            x = entries[f]
            g = _neuron(x, B)
            b = x - g * B
            row = ptr + g - groups[r, 1]
            e0, e1 = g_ptr[row], g_ptr[row + 1]
            # views indexed from 0 (no wraparound tests); unsigned targets likewise
            posts, ws = e_post[e0:e1], e_w[e0 + wo:e1 + wo]
            if dynamic:
                tms = e_tm[e0 + groups[r, 6]:e1 + groups[r, 6]]
                for e in range(e1 - e0):
                    amp = ws[e] * tm_spike(U, D, F, u, Rr, last_tm, b, tms[e], s, dt)
                    target[np.uint64(posts[e] * B + b)] += amp
            elif one:
                w = w_one[r]
                for e in range(e1 - e0):
                    target[np.uint64(posts[e] * B + b)] += w
            else:
                for e in range(e1 - e0):
                    target[np.uint64(posts[e] * B + b)] += ws[e]


@numba.njit(cache=True, inline="always")
def _next_spike(step, keys, q, b, i, y, draws, log_q):
    """The step of the next spike of input ``i`` of Poisson source ``q`` in trial ``b`` (entry ``y``); counts the draw."""
    d = draws[y]
    draws[y] = d + 1
    return step + poisson_isi(keys[q, b, 0], keys[q, b, 1], i, d, log_q[y])


@numba.njit(cache=True, nogil=True)
def _run_steps(K, step0, dt, B, b0, v, se, si, last, left, I_ext, Ae, Ai, spk, pops, pop_par, pop_ref, pois_next,
               pois_draws, pois_logq, pois_keys, st, st_step, st_trial, st_idx, st_pos, st_flag, groups, g_ptr,
               e_post, e_w, w_off, one_w, w_one, e_tm, U, D, F, u, Rr, last_tm, pend_e, pend_i, pend_until, hist,
               hist_n, hist_step, ev_mask, ev_step, ev_x, ev_n, rec_idx, rec_v, rec_e, rec_i):
    """Advance up to ``K`` steps from ``step0``; returns the number done (fewer when the event buffer fills).

    State is flat ``(N, B)`` (entry ``n * B + b``); see the module
    docstring for the scheme. ``pend_e``/``pend_i`` (L, N * B) hold the
    input scheduled before ``step0`` for steps below ``pend_until``; on
    return they hold everything scheduled for later steps (the
    populations' ring buffers), and ``Ae``/``Ai`` are folded into the state.
    """
    L = hist.shape[0]
    M = rec_idx.shape[0]
    cap = ev_step.shape[0]
    n_total = hist.shape[1]
    hist_step[:] = -1
    done = 0
    for k in range(K):
        if ev_n[0] + n_total > cap:
            break
        step = step0 + k
        for m in range(M):
            n = rec_idx[m]
            for b in range(B):
                rec_v[k, b, m] = v[n * B + b]
                rec_e[k, b, m] = se[n * B + b] + Ae[n * B + b]
                rec_i[k, b, m] = si[n * B + b] + Ai[n * B + b]
        slot = step % L
        fired = hist[slot]
        nf = 0
        # neurons, population by population (rows of pops: first, end, cond, uniform)
        for p in range(pops.shape[0]):
            n_lo, n_hi, cond, uniform = pops[p, 0], pops[p, 1], pops[p, 2], pops[p, 3]
            # blocks of entries with one set of parameters (the population, or one neuron's B trials),
            # updated in chunks so that a chunk without spikes is not scanned for them
            n_blocks = 1 if uniform else n_hi - n_lo
            for blk in range(n_blocks):
                n0 = n_lo + blk
                n1 = n_hi if uniform else n0 + 1
                c = pop_par[n0]
                for x0 in range(n0 * B, n1 * B, _CHUNK):
                    x1 = min(x0 + _CHUNK, n1 * B)
                    if cond:
                        n_spk = _lif_cond_block(x0, x1, v, se, si, left, I_ext, Ae, Ai, spk, pop_ref[n0], c[0], c[1],
                                                c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9])
                    else:
                        n_spk = _lif_block(x0, x1, v, se, si, left, I_ext, Ae, Ai, spk, pop_ref[n0], c[0], c[1], c[2],
                                           c[3], c[4], c[5], c[6], c[7], c[8], c[9])
                    if n_spk:
                        f0 = nf
                        nf = _compact(spk[x0:x1], x0, fired, nf)
                        for f in range(f0, nf):
                            last[fired[f]] = step
        # spike sources; rows of st: kind (0 Poisson, 1 spike times), first neuron (global), n, offset
        # (Poisson: row in pois_*; spike times: row in st_flag), index among the sources of its kind
        # (Poisson: key row; spike times: entry of st_pos), end of the spike-time events
        for q in range(st.shape[0]):
            g0, n_q, off = st[q, 1], st[q, 2], st[q, 3]
            if st[q, 0] == 0:
                nxt = pois_next[off * B:(off + n_q) * B]
                for y0 in range(0, nxt.shape[0], _SCAN):
                    chunk = nxt[y0:y0 + _SCAN]
                    hits = 0
                    for y in range(chunk.shape[0]):  # vectorizes
                        hits += chunk[y] == step
                    if not hits:
                        continue
                    f0 = nf
                    for y in range(chunk.shape[0]):
                        fired[nf] = (g0 * B + y0) + y
                        nf += chunk[y] == step
                    for f in range(f0, nf):
                        y = fired[f] - g0 * B
                        i = y // B
                        nxt[y] = _next_spike(step, pois_keys, st[q, 4], y - i * B, i, off * B + y, pois_draws,
                                             pois_logq)
            else:
                pos = st_pos[st[q, 4]]
                hi = st[q, 5]
                while pos < hi and st_step[pos] < step:
                    pos += 1
                hit = False
                while pos < hi and st_step[pos] == step:
                    i, tr = st_idx[pos], st_trial[pos]
                    if tr < 0:
                        for b in range(B):
                            st_flag[(off + i) * B + b] = True
                    elif b0 <= tr < b0 + B:
                        st_flag[(off + i) * B + tr - b0] = True
                    hit = True
                    pos += 1
                st_pos[st[q, 4]] = pos
                if hit:
                    for y in range(off * B, (off + n_q) * B):
                        if st_flag[y]:
                            fired[nf] = g0 * B + (y - off * B)
                            nf += 1
                            st_flag[y] = False
        hist_n[slot] = nf
        hist_step[slot] = step
        # events for the monitors
        e0 = ev_n[0]
        for f in range(nf):
            x = fired[f]
            if ev_mask[_neuron(x, B)]:
                ev_step[e0] = step
                ev_x[e0] = x
                e0 += 1
        ev_n[0] = e0
        # arrivals of this step: input scheduled before the run, then the spikes of steps step0 .. step
        if step < pend_until:
            pe, pi = pend_e[slot], pend_i[slot]
            for x in range(Ae.shape[0]):
                Ae[x] += pe[x]
                pe[x] = 0.0
                Ai[x] += pi[x]
                pi[x] = 0.0
        _deliver(step, step0, step + 1, B, L, Ae, Ai, hist, hist_n, hist_step, groups, g_ptr, e_post, e_w,
                 w_off, one_w, w_one, e_tm, U, D, F, u, Rr, last_tm, dt)
        done = k + 1
    # fold the last arrivals into the state, and schedule the spikes still in flight into pend
    for x in range(Ae.shape[0]):
        se[x] += Ae[x]
        Ae[x] = 0.0
        si[x] += Ai[x]
        Ai[x] = 0.0
    end = step0 + done
    for t in range(end, end + L - 1):
        slot = t % L
        _deliver(t, step0, end, B, L, pend_e[slot], pend_i[slot], hist, hist_n, hist_step, groups, g_ptr, e_post,
                 e_w, w_off, one_w, w_one, e_tm, U, D, F, u, Rr, last_tm, dt)
    return done


@numba.njit(cache=True)
def _split_events(ev_step, ev_x, B, b0, slot_of, slot_first, n_slots, counts):
    """The events of one trial group, grouped by monitored source, each source's in the order given.

    ``ev_step``, ``ev_x`` (E,): step and ``x = neuron * B + trial`` (global
    neuron, trial within the group) of every event; ``slot_of[n]``: the
    slot of neuron ``n``'s source, ``slot_first[k]`` the first neuron of
    slot ``k``. Adds one to ``counts[x]`` per event. Returns ``start``
    (n_slots + 1,) and ``steps``, ``trials`` (from ``b0``; empty when
    ``B`` is 1: all ``b0``), ``idx`` (neuron within its source), slot
    ``k``'s events at ``start[k]:start[k + 1]``.
    """
    E = ev_step.shape[0]
    start = np.zeros(n_slots + 1, np.int64)
    for e in range(E):
        start[slot_of[_neuron(ev_x[e], B)] + 1] += 1
    for k in range(n_slots):
        start[k + 1] += start[k]
    fill = start[:n_slots].copy()
    steps, trials, idx = np.empty(E, np.int64), np.empty(E if B > 1 else 0, np.int64), np.empty(E, np.int64)
    for e in range(E):
        x = ev_x[e]
        n = _neuron(x, B)
        k = slot_of[n]
        j = fill[k]
        fill[k] = j + 1
        steps[j] = ev_step[e]
        if B > 1:
            trials[j] = x - n * B + b0
        idx[j] = n - slot_first[k]
        counts[x] += 1
    return start, steps, trials, idx


# ------------------------------------------------------------------ driver


def eligible(net) -> bool:
    """Whether ``net.run`` can use the fused engine."""
    if net.impl != "cpu" or net.hooks or not net.populations:
        return False
    for pop in net.populations:
        if not isinstance(pop.model, LIF) or any(not c.constant for c in pop.currents):
            return False
    if any(not isinstance(src, (PoissonInput, SpikeTimes)) for src in net.sources):
        return False
    if any(pr.per_trial_weights or np.ndim(pr.w) != 1 for pr in net.projections):  # shared weights only
        return False
    for mon in net.monitors:
        if isinstance(mon, StateMonitor) and any(v not in _FUSED_VARS for v in mon.variables):
            return False
    return True


def _flat(arrays, dtype):
    """Concatenate (B, n_k) arrays along neurons and lay them out (N, B), C-contiguous."""
    arrays = list(arrays)
    if not arrays:
        return np.zeros((0, 1), dtype)
    return np.ascontiguousarray(np.concatenate(arrays, axis=1).T, dtype=dtype)


class _Layout:
    """The network gathered into the kernel's flat arrays (shared by all trial groups)."""

    def __init__(self, net):
        pops, sources, projs = net.populations, net.sources, net.projections
        self.offsets, off = {}, 0
        for obj in pops + sources:
            self.offsets[id(obj)] = off
            off += obj.n
        self.N = sum(p.n for p in pops)
        self.n_total = off
        L = pops[0]._buf["exc"].shape[0]
        self.L = L

        # populations: (first, end, cond, uniform) and parameters per neuron (10 columns)
        rows, par, ref = [], [], []
        for pop in pops:
            p = pop.params
            o = self.offsets[id(pop)]
            cond = isinstance(pop.model, LIFCond)
            nan = np.full(pop.n, np.nan)
            cols = [p["E_L"], p["R"], p["I_bg"], pop._dt_tau if cond else pop._decay_m,
                    p["E_e"] if cond else nan, p["E_i"] if cond else nan, p["v_th"], p["v_reset"],
                    pop._decay_e, pop._decay_i]
            block = np.stack([np.broadcast_to(np.asarray(c, np.float64), (pop.n,)) for c in cols], axis=1)
            uniform = bool(np.all(block == block[:1], axis=0)[~np.isnan(block[0])].all()) and \
                bool(np.all(pop._ref_steps == pop._ref_steps[0]))
            prev = rows[-1] if rows else None
            if prev and uniform and prev[3] and prev[2] == cond and prev[1] == o and \
                    np.array_equal(par[-1][0], block[0], equal_nan=True) and ref[-1][0] == pop._ref_steps.flat[0]:
                rows[-1] = (prev[0], o + pop.n, int(cond), 1)  # same parameters as the previous: one block
            else:
                rows.append((o, o + pop.n, int(cond), int(uniform)))
            par.append(block)
            ref.append(np.broadcast_to(pop._ref_steps, (pop.n,)))
        self.pops = np.array(rows, np.int64)
        self.pop_par = np.ascontiguousarray(np.concatenate(par), np.float64)
        self.pop_ref = np.ascontiguousarray(np.concatenate(ref), np.int64)

        # spike sources: (kind, first neuron, n, offset, index among its kind, end of its spike-time events)
        self.pois = [s for s in sources if isinstance(s, PoissonInput)]
        self.times = [s for s in sources if isinstance(s, SpikeTimes)]
        st_rows, p_off, t_off, ev_end = [], 0, 0, 0
        self.st_start = []  # where each spike-time source's events start in the concatenation
        for src in sources:
            g0 = self.offsets[id(src)]
            if isinstance(src, PoissonInput):
                st_rows.append((0, g0, src.n, p_off, self.pois.index(src), 0))
                p_off += src.n
            else:
                self.st_start.append(ev_end)
                ev_end += len(src._steps)
                st_rows.append((1, g0, src.n, t_off, self.times.index(src), ev_end))
                t_off += src.n
        self.st = np.array(st_rows, np.int64).reshape(-1, 6)
        self.n_times = t_off
        if self.times:
            self.st_step = np.concatenate([s._steps for s in self.times]).astype(np.int64)
            self.st_trial = np.concatenate([s._trials for s in self.times]).astype(np.int64)
            self.st_idx = np.concatenate([s._idx for s in self.times]).astype(np.int64)
        else:
            self.st_step = self.st_trial = self.st_idx = np.zeros(0, np.int64)

        # synapses grouped by (projection, delay), kept on the network while the structure and the delays
        # stay the same; the weights and Tsodyks-Markram parameters are gathered at every run (they may change)
        self.tm = [pr for pr in projs if pr.dynamic]
        delays, cached = getattr(net, "_fused_synapses", None) or (None, None)
        if cached is None or any(d is not pr.delay_steps and not np.array_equal(d, pr.delay_steps)
                                 for d, pr in zip(delays, projs)):
            cached = _synapse_groups(projs, self.offsets)
            net._fused_synapses = ([pr.delay_steps for pr in projs], cached)
        self.groups, self.g_ptr, self.e_post, self.e_tm, sel = cached
        self.e_w, self.w_off, self.one_w, self.w_one = _weights(projs, sel, self.groups, self.g_ptr)
        self.U, self.D, self.F = (np.ascontiguousarray(np.concatenate([getattr(pr, k) for pr in self.tm])
                                                       if self.tm else np.zeros(0), np.float64) for k in "UDF")


def _weights(projs, sels, groups, g_ptr):
    """The weights as the kernel reads them: ``e_w``, ``w_off``, ``one_w``, ``w_one`` (see :func:`_deliver`).

    Gathered at every run (weights may change). A static projection whose
    weights are all one number (bit for bit) is not copied: its groups read
    ``w_one``. The other projections' weights are gathered into ``e_w`` in
    layout order (``sels``: the synapse of every entry, see
    :func:`_synapse_groups`), and their groups are checked one by one.
    """
    e_base = np.concatenate([[0], np.cumsum([pr.n_synapses for pr in projs], dtype=np.int64)])
    shared, parts, base, off = [], [], np.zeros(len(projs), np.int64), 0
    for p, (pr, sel) in enumerate(zip(projs, sels)):
        w = np.asarray(pr.w, np.float64)
        bits = w.view(np.int64)
        one = not pr.dynamic and len(w) > 0 and bool(np.all(bits == bits[0]))
        shared.append(w[0] if one else None)
        if not one:
            parts.append(w if sel is None else w[sel])
            base[p] = off - e_base[p]
            off += len(w)
    e_w = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), np.float64)
    w_off = np.ascontiguousarray(base[groups[:, 7]])
    one_w, w_one = np.zeros(len(groups), np.int64), np.zeros(len(groups))
    for r, (p, ptr, n) in enumerate(groups[:, [7, 3, 2]]):
        if shared[p] is not None:
            one_w[r], w_one[r] = 1, shared[p]
            continue
        e0 = g_ptr[ptr] + w_off[r]
        seg = e_w[e0:g_ptr[ptr + n] + w_off[r]].view(np.int64)
        if len(seg) and np.all(seg == seg[0]):
            one_w[r], w_one[r] = 1, e_w[e0]
    return e_w, w_off, one_w, w_one


def _synapse_groups(projs, offsets):
    """Synapses grouped by (projection, delay), in delivery order (descending delay, then projection).

    Returns ``groups`` (rows: delay, first pre neuron, n_pre, offset into
    ``g_ptr``, inhibitory, dynamic, offset from an entry to its place in
    ``e_tm``, projection), ``g_ptr`` (CSR row pointers of every group), ``e_post``
    (global target of every entry, int32), ``e_tm`` (the Tsodyks-Markram synapse
    of every entry of a dynamic group), and per projection the synapse of
    every entry (``None``: all, in CSR order, for a projection with one delay).
    """
    e_post = np.empty(sum(pr.n_synapses for pr in projs), np.int32)  # 4 bytes: read for every event
    groups, ptrs, tms, sels, ptr_base, e_base, tm_base, tm_pos = [], [], [], [], 0, 0, 0, 0
    for p_index, pr in enumerate(projs):
        delays = pr.delay_steps
        if not len(delays):  # no synapses: nothing to deliver
            sels.append(None)
            continue
        one_delay = delays.min() == delays.max()
        sel_p = [None] if one_delay else [np.flatnonzero(delays == d) for d in np.unique(delays)]
        for sel in sel_p:  # CSR order kept within each row
            n = pr.n_synapses if sel is None else len(sel)
            if sel is None:
                ptrs.append(e_base + pr.indptr)
                np.add(pr.j, offsets[id(pr.post)], out=e_post[e_base:e_base + n])
            else:
                ptrs.append(e_base + np.concatenate([[0], np.cumsum(np.bincount(pr.i[sel], minlength=pr.pre.n))]))
                np.add(pr.j[sel], offsets[id(pr.post)], out=e_post[e_base:e_base + n])
            if pr.dynamic:
                tms.append(tm_base + (np.arange(n) if sel is None else sel))
            d = int(delays[0] if sel is None else delays[sel[0]])
            groups.append((d, offsets[id(pr.pre)], pr.pre.n, ptr_base, int(pr.receptor == "inh"), int(pr.dynamic),
                           tm_pos - e_base, p_index))
            ptr_base += pr.pre.n + 1
            e_base += n
            tm_pos += n if pr.dynamic else 0
        sels.append(None if one_delay else np.concatenate(sel_p))
        tm_base += pr.n_synapses if pr.dynamic else 0
    groups.sort(key=lambda g: (-g[0], g[7]))
    cat = lambda parts: np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), np.int64)  # noqa: E731
    return np.array(groups, np.int64).reshape(-1, 8), cat(ptrs), e_post, cat(tms), sels


class _Group:
    """The state of trials ``b0 .. b1 - 1`` in the kernel's layout; written back by :meth:`scatter`."""

    def __init__(self, net, lay: _Layout, b0: int, b1: int):
        self.b0, self.b1 = b0, b1
        B, dtype, pops = b1 - b0, net.dtype, net.populations
        sl = slice(b0, b1)
        self.B = B
        self.v = _flat((p.state["v"][sl] for p in pops), dtype).ravel()
        self.se, self.si = (_flat((p.state[p.model.synaptic_vars[k]][sl] for p in pops), dtype).ravel()
                            for k in (0, 1))
        self.last = _flat((p.state["last_spike"][sl] for p in pops), np.int64).ravel()
        # steps of refractoriness left at the first step; one byte where the refractory periods allow
        ref = np.repeat(lay.pop_ref, B)
        left = np.maximum(ref - (net._step - self.last), 0)
        small = max(left.max(initial=0), ref.max(initial=0)) <= 255
        self.left = left.astype(np.uint8 if small else np.int64)
        self.I_ext = _flat((p._I_const[sl] for p in pops), dtype).ravel()
        if not self.I_ext.any():
            self.I_ext = np.zeros(0, dtype)  # no injected current: the kernel skips it
        self.Ae = np.zeros_like(self.v)
        self.Ai = np.zeros_like(self.v)
        self.spk = np.zeros(len(self.v), np.bool_)
        # pending input: the populations' ring buffers (L, B, n) as (L, N * B)
        L = lay.L
        self.pend_e, self.pend_i = (
            np.ascontiguousarray(np.concatenate([p._buf[r][:, sl] for p in pops], axis=2).transpose(0, 2, 1),
                                 dtype).reshape(L, -1) for r in ("exc", "inh"))
        self.pois_next = _flat((s._next[sl] for s in lay.pois), np.int64).ravel()
        self.pois_draws = _flat((s._draws[sl] for s in lay.pois), np.int64).ravel()
        self.pois_logq = _flat((s._log_q[sl] for s in lay.pois), np.float64).ravel()
        self.pois_keys = np.ascontiguousarray(np.stack([s._keys[sl] for s in lay.pois]) if lay.pois
                                              else np.zeros((0, B, 2), np.uint64), np.uint64)
        self.st_pos = np.array([start + s._pos for s, start in zip(lay.times, lay.st_start)], np.int64)
        self.st_flag = np.zeros(lay.n_times * B, np.bool_)
        self.u = np.ascontiguousarray(np.concatenate([pr.u[sl] for pr in lay.tm], axis=1) if lay.tm
                                      else np.zeros((B, 0)), dtype)
        self.Rr = np.ascontiguousarray(np.concatenate([pr.R[sl] for pr in lay.tm], axis=1) if lay.tm
                                       else np.zeros((B, 0)), dtype)
        self.last_tm = np.ascontiguousarray(np.concatenate([pr.last[sl] for pr in lay.tm], axis=1) if lay.tm
                                            else np.zeros((B, 0), np.int64), np.int64)
        self.hist = np.empty((L, lay.n_total * B), np.int64)
        self.hist_n = np.zeros(L, np.int64)
        self.hist_step = np.full(L, -1, np.int64)
        cap = max(4 * lay.n_total * B, _EVENT_BUFFER)
        self.ev_step = np.empty(cap, np.int64)
        self.ev_x = np.empty(cap, np.int64)
        self.ev_n = np.zeros(1, np.int64)
        # scheduled input before the first run: only steps below step0 + L - 1 can hold any
        self.pend_until = net._step + L - 1 if (self.pend_e.any() or self.pend_i.any()) else net._step

    def run_chunk(self, lay: _Layout, K: int, step0: int, dt: float, ev_mask, rec_idx, rec):
        """Advance ``K`` steps from ``step0``, recording into ``rec`` (3 arrays (K, B, M)); returns the spike
        events ``(steps, x)`` of the monitored sources (``x = neuron * B + trial``): views of the group's
        event buffer, valid until the next call."""
        done = 0
        self.ev_n[0] = 0
        while done < K:  # the kernel stops early only when its event buffer is full: then it is doubled
            k = _run_steps(K - done, np.int64(step0 + done), dt, self.B, self.b0, self.v, self.se, self.si,
                           self.last, self.left, self.I_ext, self.Ae, self.Ai, self.spk, lay.pops, lay.pop_par,
                           lay.pop_ref, self.pois_next, self.pois_draws, self.pois_logq, self.pois_keys, lay.st,
                           lay.st_step, lay.st_trial, lay.st_idx, self.st_pos, self.st_flag, lay.groups, lay.g_ptr,
                           lay.e_post, lay.e_w, lay.w_off, lay.one_w, lay.w_one, lay.e_tm, lay.U, lay.D, lay.F,
                           self.u, self.Rr, self.last_tm, self.pend_e, self.pend_i, np.int64(self.pend_until),
                           self.hist, self.hist_n, self.hist_step, ev_mask, self.ev_step, self.ev_x, self.ev_n,
                           rec_idx, *(r[done:] for r in rec))
            done += k
            self.pend_until = step0 + done + lay.L - 1  # the kernel scheduled the spikes in flight into pend
            if done < K:
                n = int(self.ev_n[0])
                self.ev_step = np.concatenate([self.ev_step[:n], np.empty(len(self.ev_step), np.int64)])
                self.ev_x = np.concatenate([self.ev_x[:n], np.empty(len(self.ev_x), np.int64)])
        n = int(self.ev_n[0])
        return self.ev_step[:n], self.ev_x[:n]

    def scatter(self, net, lay: _Layout) -> None:
        """Write the state back into the populations, sources and projections."""
        sl, B = slice(self.b0, self.b1), self.B
        for pop in net.populations:
            o = lay.offsets[id(pop)]
            cols = slice(o * B, (o + pop.n) * B)
            syn_e, syn_i = pop.model.synaptic_vars
            for key, flat in (("v", self.v), (syn_e, self.se), (syn_i, self.si), ("last_spike", self.last)):
                pop.state[key][sl] = flat[cols].reshape(pop.n, B).T
            for r, pend in (("exc", self.pend_e), ("inh", self.pend_i)):
                pop._buf[r][:, sl] = pend[:, cols].reshape(lay.L, pop.n, B).transpose(0, 2, 1)
        o = 0
        for src in lay.pois:
            src._next[sl] = self.pois_next[o * B:(o + src.n) * B].reshape(src.n, B).T
            src._draws[sl] = self.pois_draws[o * B:(o + src.n) * B].reshape(src.n, B).T
            o += src.n
        for src, pos, start in zip(lay.times, self.st_pos, lay.st_start):
            src._pos = max(src._pos, int(pos) - start)
        o = 0
        for pr in lay.tm:
            cols = slice(o, o + pr.n_synapses)
            pr.u[sl], pr.R[sl], pr.last[sl] = self.u[:, cols], self.Rr[:, cols], self.last_tm[:, cols]
            o += pr.n_synapses


def _groups(net) -> list[tuple[int, int]]:
    """Trial ranges advanced one after another (or on numba's threads with ``parallel=True``).

    A group holds as many trials as keep the state touched every step
    (about 60 bytes per neuron and 8 per Poisson input and trial) within
    :data:`_TRIAL_BLOCK_BYTES`, so it stays in a core's cache while the
    group runs; with ``parallel=True`` there are at least as many groups as threads.
    """
    B = net.batch_size
    per_trial = 60 * sum(p.n for p in net.populations) + 8 * sum(s.n for s in net.sources)
    n = -(-B // max(1, _TRIAL_BLOCK_BYTES // max(1, per_trial)))
    if net.parallel:
        n = max(n, min(B, numba.get_num_threads(), os.cpu_count() or 1))
    bounds = np.linspace(0, B, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def run_fused(net, n_steps: int) -> None:
    """Advance ``net`` (eligible, reset) by ``n_steps`` steps with :func:`_run_steps`."""
    lay = _Layout(net)
    groups = [_Group(net, lay, b0, b1) for b0, b1 in _groups(net)]
    B = net.batch_size

    # monitors: spike events of every monitored source; rasters only for rate and trace monitors
    spiking = [m for m in net.monitors if not isinstance(m, StateMonitor)]
    ev_mask = np.zeros(lay.n_total, np.bool_)
    for mon in spiking:
        o = lay.offsets[id(mon.source)]
        ev_mask[o:o + mon.source.n] = True
    state_mons = [m for m in net.monitors if isinstance(m, StateMonitor)]
    rec = sorted({lay.offsets[id(m.source)] + int(i) for m in state_mons for i in m.indices})
    rec_idx = np.array(rec, np.int64)
    rec_pos = {g: k for k, g in enumerate(rec)}
    raster_n = sum(m.source.n for m in spiking if not isinstance(m, SpikeMonitor))
    per_step = B * (3 * len(rec_idx) + raster_n)
    K_max = int(max(1, min(n_steps, _RECORD_BUDGET // max(1, per_step))))
    pool = ThreadPoolExecutor(len(groups)) if len(groups) > 1 else None
    try:
        done = 0
        while done < n_steps:
            K = min(K_max, n_steps - done)
            step0 = net._step
            recs = [[np.empty((K, g.B, len(rec_idx)), net.dtype) for _ in range(3)] for g in groups]
            work = [lambda g=g, r=r: g.run_chunk(lay, K, step0, float(net.dt), ev_mask, rec_idx, r)
                    for g, r in zip(groups, recs)]
            events = list(pool.map(lambda f: f(), work)) if pool else [work[0]()]
            _record(net, lay, groups, events, step0, K, spiking, state_mons, recs, rec_pos)
            net._step = step0 + K
            done += K
    finally:
        if pool:
            pool.shutdown()
        for g in groups:
            g.scatter(net, lay)
    _set_last_spikes(net, lay, groups)


def _record(net, lay, groups, events, step0, K, spiking, state_mons, recs, rec_pos):
    """Hand the monitors the events and state values of steps ``step0 .. step0 + K - 1``."""
    sources = list({id(m.source): m.source for m in spiking}.values())
    slot_of = np.full(lay.n_total, -1, np.int64)
    for k, src in enumerate(sources):
        o = lay.offsets[id(src)]
        slot_of[o:o + src.n] = k
    first = np.array([lay.offsets[id(src)] for src in sources], np.int64)
    counts = [np.zeros(lay.n_total * g.B, np.int64) for g in groups]
    parts = [_split_events(e[0], e[1], g.B, g.b0, slot_of, first, len(sources), c)
             for e, g, c in zip(events, groups, counts)]
    split = {}
    for k, src in enumerate(sources):
        per_group = []
        for (start, steps, trials, idx), g in zip(parts, groups):
            sl = slice(start[k], start[k + 1])
            b = trials[sl] if g.B > 1 else np.broadcast_to(np.int64(g.b0), (sl.stop - sl.start,))  # read-only
            per_group.append((steps[sl], b, idx[sl]))
        if len(per_group) == 1:
            s, b, i = per_group[0]  # views: no copy
        else:  # groups in trial order, each in step order: merge by step
            s, b, i = (np.concatenate(a) for a in zip(*per_group))
            order = np.argsort(s, kind="stable")
            s, b, i = s[order], b[order], i[order]
        split[id(src)] = s, b, i
    for mon in spiking:
        s, b, i = split[id(mon.source)]
        if isinstance(mon, SpikeMonitor):
            o, n = lay.offsets[id(mon.source)], mon.source.n
            for g, c in zip(groups, counts):
                mon.count[g.b0:g.b1] += c[o * g.B:(o + n) * g.B].reshape(n, g.B).T
            mon._record_events(s, b, i, counted=True, ordered=net.batch_size == 1)
        else:
            raster = np.zeros((K, net.batch_size, mon.source.n), bool)
            raster[s - step0, b, i] = True
            mon._record_chunk(step0, raster)
    if state_mons:
        rec = [np.concatenate([r[j] for r in recs], axis=1) for j in range(3)]
        recorded = {"v": rec[0], "I_e": rec[1], "I_i": rec[2], "g_e": rec[1], "g_i": rec[2]}
        for mon in state_mons:
            cols = [rec_pos[lay.offsets[id(mon.source)] + int(i)] for i in mon.indices]
            mon._record_chunk(step0, {var: recorded[var][:, :, cols] for var in mon.variables})


def _set_last_spikes(net, lay, groups) -> None:
    """``spikes`` of every population and source: the spikes of the last step (from the spike history)."""
    last_step = net._step - 1
    for obj in net.populations + net.sources:
        obj.spikes[...] = False
    for g in groups:
        slot = last_step % lay.L
        if g.hist_step[slot] != last_step:
            continue
        x = g.hist[slot, : g.hist_n[slot]]
        neuron, trial = x // g.B, x % g.B + g.b0
        for obj in net.populations + net.sources:
            o = lay.offsets[id(obj)]
            sel = (neuron >= o) & (neuron < o + obj.n)
            obj.spikes[trial[sel], neuron[sel] - o] = True
