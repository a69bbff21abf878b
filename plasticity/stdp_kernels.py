"""Kernel ``plasticity_stdp_synapses``: one STDP tick on a synapse list (NumPy reference + numba CPU path).

The reference is the general NumPy path of :meth:`plasticity.Rule.step_synapses`
(an :class:`~plasticity.STDP` rule without constraints, with a
:class:`~plasticity.SynapseIndex`); the CPU fast path does the same tick in
one compiled loop over the synapses of the neurons that spiked, so its cost
per tick does not grow with the number of synapses. Both update ``w`` and the
traces in place. :meth:`plasticity.STDP.step_synapses` dispatches here.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuro.kernels import register

__all__ = ["STDP_SYNAPSES_KERNEL", "stdp_synapses_reference", "stdp_synapses_cpu"]


def stdp_synapses_reference(w, pre_index, post_index, pre, post, pre_trace, post_trace, pre_trace2, post_trace2,
                            pre_order, pre_ptr, post_order, post_ptr, *, rule):
    """The NumPy oracle: ``Rule.step_synapses`` of ``rule`` with the index given by its arrays.

    ``w`` (S,) shared by the trials (their changes averaged) or (B, S) per
    trial (row ``b`` changed by trial ``b`` alone), ``pre_index``/``post_index``
    (S,) int64, ``pre`` (B, n_pre) and ``post`` (B, n_post) float 0/1, traces
    (B, n) (the ``*_trace2`` pair is used by the triplet rule only),
    ``*_order``/``*_ptr`` the grouping of the synapses by presynaptic /
    postsynaptic neuron (see :class:`~plasticity.SynapseIndex`).
    """
    from .base import Rule
    from .synapse_index import SynapseIndex

    index = SynapseIndex.from_arrays(pre_order, pre_ptr, post_order, post_ptr)
    state = {"pre_trace": pre_trace, "post_trace": post_trace}
    if rule.triplet:
        state.update(pre_trace2=pre_trace2, post_trace2=post_trace2)
    Rule.step_synapses(rule, w, pre_index, post_index, pre, post, state, index=index)
    return w


@numba.njit(cache=True, nogil=True, inline="always")
def _jump_traces(spikes, trace, slow_trace, nearest, triplet):  # pragma: no cover - compiled
    """Traces of the neurons that spiked this tick: reset to 1 (nearest-neighbour) or incremented (all-to-all).

    ``slow_trace`` is the triplet rule's second trace (``r2`` or ``o2``), updated alike when ``triplet``.
    """
    for m in range(spikes.shape[0]):
        if spikes[m] != 0:
            if nearest:
                trace[m] = 1.0
                if triplet:
                    slow_trace[m] = 1.0
            else:
                trace[m] += spikes[m]
                if triplet:
                    slow_trace[m] += spikes[m]


@numba.njit(cache=True, nogil=True)
def _stdp_loop(w, pre_index, post_index, pre, post, xt, yt, r2t, o2t, pre_order, pre_ptr, post_order, post_ptr,
               a_plus, a_minus, a3_plus, a3_minus, d_plus, d_minus, d_x, d_y, triplet, nearest, multiplicative,
               has_min, w_min, has_max, w_max, dw_buf):
    """``w`` (R, S): R = 1 row shared by the B trials (changes averaged over them) or R = B rows, one per trial."""
    B, n_pre = pre.shape
    n_post = post.shape[1]
    R = w.shape[0]
    # 1. decay the traces
    for b in range(B):
        for m in range(n_pre):
            xt[b, m] *= d_plus
            if triplet:
                r2t[b, m] *= d_x
        for k in range(n_post):
            yt[b, k] *= d_minus
            if triplet:
                o2t[b, k] *= d_y
    # neurons that spiked in any trial, and the number of synapses they touch
    post_any = np.zeros(n_post, dtype=np.bool_)
    pre_any = np.zeros(n_pre, dtype=np.bool_)
    count = 0
    for k in range(n_post):
        for b in range(B):
            if post[b, k] != 0:
                post_any[k] = True
                break
        if post_any[k]:
            count += post_ptr[k + 1] - post_ptr[k]
    for m in range(n_pre):
        for b in range(B):
            if pre[b, m] != 0:
                pre_any[m] = True
                break
        if pre_any[m]:
            count += pre_ptr[m + 1] - pre_ptr[m]
    touched_row = np.empty(R * count, dtype=np.int64)
    touched = np.empty(R * count, dtype=np.int64)
    n_t = 0
    # 2. potentiation at the synapses of spiking postsynaptic neurons
    for k in range(n_post):
        if not post_any[k]:
            continue
        for q in range(post_ptr[k], post_ptr[k + 1]):
            s = post_order[q]
            m = pre_index[s]
            for r in range(R):
                if R > 1 and post[r, k] == 0:
                    continue  # per trial: only the trials in which neuron k spiked
                lo, hi = (0, B) if R == 1 else (r, r + 1)
                acc = 0.0
                for b in range(lo, hi):
                    f = post[b, k] * (a_plus + a3_plus * o2t[b, k]) if triplet else post[b, k] * a_plus
                    acc += f * xt[b, m]
                ltp = acc / (hi - lo)
                if multiplicative:
                    ltp *= w_max - w[r, s]
                dw_buf[r, s] += ltp
                touched_row[n_t] = r
                touched[n_t] = s
                n_t += 1
    # 3. depression at the synapses of spiking presynaptic neurons
    for m in range(n_pre):
        if not pre_any[m]:
            continue
        for q in range(pre_ptr[m], pre_ptr[m + 1]):
            s = pre_order[q]
            k = post_index[s]
            for r in range(R):
                if R > 1 and pre[r, m] == 0:
                    continue
                lo, hi = (0, B) if R == 1 else (r, r + 1)
                acc = 0.0
                for b in range(lo, hi):
                    g = pre[b, m] * (a_minus + a3_minus * r2t[b, m]) if triplet else pre[b, m] * a_minus
                    acc += yt[b, k] * g
                ltd = acc / (hi - lo)
                if multiplicative:
                    ltd *= w[r, s] - w_min
                dw_buf[r, s] -= ltd
                touched_row[n_t] = r
                touched[n_t] = s
                n_t += 1
    # 4. apply once per synapse (a repeated id finds its change already applied and zeroed), hard bounds
    for q in range(n_t):
        r = touched_row[q]
        s = touched[q]
        v = w[r, s] + dw_buf[r, s]
        dw_buf[r, s] = 0.0
        if not multiplicative:
            if has_min and v < w_min:
                v = w_min
            if has_max and v > w_max:
                v = w_max
        w[r, s] = v
    # 5. traces jump on this tick's spikes
    for b in range(B):
        _jump_traces(pre[b], xt[b], r2t[b], nearest, triplet)
        _jump_traces(post[b], yt[b], o2t[b], nearest, triplet)


_SCRATCH: dict = {}


def stdp_synapses_cpu(w, pre_index, post_index, pre, post, pre_trace, post_trace, pre_trace2, post_trace2,
                      pre_order, pre_ptr, post_order, post_ptr, *, rule):
    """Numba loop; equal to :func:`stdp_synapses_reference` (multiplicative weights are not clipped, as there)."""
    if w.ndim == 2 and w.shape[0] != pre.shape[0]:
        raise ValueError(f"per-trial weights w (B, S) need one row per trial: got {w.shape[0]} rows for "
                         f"B = {pre.shape[0]} trials")
    rows = w[None, :] if w.ndim == 1 else w  # (1, S) shared by the trials, or (B, S) one per trial
    key = (rows.shape, w.dtype)
    buf = _SCRATCH.get(key)
    if buf is None:
        buf = _SCRATCH[key] = np.zeros(rows.shape, dtype=w.dtype)  # zero between calls
    r2 = pre_trace2 if rule.triplet else pre_trace
    o2 = post_trace2 if rule.triplet else post_trace
    _stdp_loop(rows, pre_index, post_index, pre, post, pre_trace, post_trace, r2, o2, pre_order, pre_ptr, post_order,
               post_ptr, rule.a_plus, rule.a_minus, rule.a3_plus, rule.a3_minus, math.exp(-rule.dt / rule.tau_plus),
               math.exp(-rule.dt / rule.tau_minus), math.exp(-rule.dt / rule.tau_x), math.exp(-rule.dt / rule.tau_y),
               rule.triplet, rule.interaction == "nearest", rule.weight_dependence == "multiplicative",
               rule.w_min is not None, 0.0 if rule.w_min is None else rule.w_min, rule.w_max is not None,
               0.0 if rule.w_max is None else rule.w_max, buf)
    return w


STDP_SYNAPSES_KERNEL = register(
    "plasticity_stdp_synapses", reference=stdp_synapses_reference, cpu=stdp_synapses_cpu,
    doc="one STDP tick (pair or triplet traces) on a synapse list, touching the synapses of spiking neurons only",
)
