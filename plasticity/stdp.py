r"""Spike-timing-dependent plasticity with exponential traces (pair and triplet).

The rule runs once per clock tick on boolean spike arrays: ``pre`` is
``(B, n_pre)`` and ``post`` is ``(B, n_post)`` (True where a neuron spiked in
this tick), ``W`` is ``(n_post, n_pre)``. Its state holds one trace per
neuron and trial, ``(B, n)`` each: per-neuron traces are exact for both
interaction schemes below, because every synapse from neuron :math:`j` sees
the same presynaptic spike train. The batch axis holds independent trials
sharing one weight matrix; their changes are **averaged** (one step on a
batch equals the mean of the per-trial steps). On a synapse list the
weights may instead be per trial, ``(B, S)``: each trial then changes its
own row, unaveraged (as ``B`` separate batches of one).

Per tick of length :math:`\Delta t` (``dt``, ms), in this order:

1. traces decay: :math:`\tilde x = x\, e^{-\Delta t/\tau_+}`,
   :math:`\tilde y = y\, e^{-\Delta t/\tau_-}` (and the triplet traces
   :math:`\tilde r_2 = r_2 e^{-\Delta t/\tau_x}`, :math:`\tilde o_2 = o_2 e^{-\Delta t/\tau_y}`);
2. the weights change, using the decayed traces (spikes strictly earlier):

   .. math::
       \Delta W_{ij} = \big\langle f_+(W_{ij})\, S^{post}_i\, \tilde x_j\, (A_+ + A_3^+ \tilde o_{2,i})
                     - f_-(W_{ij})\, \tilde y_i\, S^{pre}_j\, (A_- + A_3^- \tilde r_{2,j}) \big\rangle

   with :math:`S \in \{0, 1\}` the spikes of this tick. Additive weight
   dependence: :math:`f_\pm = 1` and the weights are clipped to
   :math:`[w_{min}, w_{max}]` after the step (hard bounds; a bound may be
   ``None``). Multiplicative (soft bounds; Rubin, Lee & Sompolinsky 2001, Gütig et
   al. 2003 with :math:`\mu = 1`): :math:`f_+ = w_{max} - W`,
   :math:`f_- = W - w_{min}`;
3. traces jump on this tick's spikes: all-to-all :math:`x \leftarrow \tilde x + S^{pre}`
   (every pair of spikes interacts); nearest-neighbour :math:`x \leftarrow 1`
   where :math:`S^{pre}` (only the nearest earlier spike counts; symmetric
   nearest-spike scheme of Morrison et al. 2008). The same for every trace.

For one pre and one post spike :math:`\Delta s = t_{post} - t_{pre}` apart,
the total change is the exponential window
:math:`A_+ e^{-\Delta s/\tau_+}` for :math:`\Delta s > 0` and
:math:`-A_- e^{\Delta s/\tau_-}` for :math:`\Delta s < 0` (0 when both fall
in the same tick). With :math:`A_3^\pm = 0` (default) this is pair-based
STDP; with :math:`A_3^\pm > 0` it is the triplet rule of Pfister & Gerstner
(2006) (:meth:`STDP.pfister_gerstner` gives their visual-cortex parameters).

On a synapse list (:meth:`STDP.step_synapses`, used by
:func:`plasticity.attach_to_network` on ``neuro`` projections) only the
synapses of neurons that spiked in the tick change (and are clipped); with a
:class:`~plasticity.SynapseIndex`, NumPy arrays and no extra constraints the
tick runs as one compiled loop (kernel ``plasticity_stdp_synapses``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuro.backend import array_module, resolve_dtype

from neuro.validation import check_choice, check_nonneg, check_positive, check_real
from ._checks import warn
from .base import Rule, check_shape
from .constraints import clip_inplace

__all__ = ["STDP"]

_PAIR_KEYS = ("pre_trace", "post_trace")
_TRIPLET_KEYS = ("pre_trace2", "post_trace2")


@dataclass(frozen=True)
class STDP(Rule):
    r"""Trace-based STDP on spike arrays (see the module docstring for the update as math).

    Times are in ms; weights in the units of ``W`` (e.g. nA on a ``neuro`` projection).

    Parameters:
        a_plus, a_minus: :math:`A_+, A_-` (>= 0, not both 0), the pair amplitudes.
        tau_plus, tau_minus: :math:`\tau_+, \tau_-` (> 0), window time constants.
        dt: the tick length (> 0); a ``dt`` above a time constant warns.
        interaction: ``"all-to-all"`` or ``"nearest"``.
        weight_dependence: ``"additive"`` (hard bounds) or ``"multiplicative"`` (soft bounds).
        w_min, w_max: the bounds (``None`` for none; multiplicative needs both).
        a3_plus, a3_minus, tau_x, tau_y: triplet terms :math:`A_3^+, A_3^-` (>= 0)
            and the slow traces' time constants :math:`\tau_y` (post), :math:`\tau_x` (pre).

    State: ``{"pre_trace": (B, n_pre), "post_trace": (B, n_post)}``, plus
    ``"pre_trace2"``/``"post_trace2"`` for the triplet rule.
    """

    a_plus: float = 0.01
    a_minus: float = 0.0105
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    dt: float = 1.0
    interaction: str = "all-to-all"
    weight_dependence: str = "additive"
    w_min: float | None = 0.0
    w_max: float | None = 1.0
    a3_plus: float = 0.0
    a3_minus: float = 0.0
    tau_x: float = 101.0
    tau_y: float = 125.0

    kind = "spike"

    def __post_init__(self):
        super().__post_init__()
        s = lambda name, v: object.__setattr__(self, name, v)  # noqa: E731
        for name in ("a_plus", "a_minus", "a3_plus", "a3_minus"):
            s(name, check_nonneg(getattr(self, name), name))
        if self.a_plus == 0 and self.a_minus == 0 and self.a3_plus == 0 and self.a3_minus == 0:
            raise ValueError("STDP needs a nonzero amplitude (a_plus, a_minus, a3_plus or a3_minus)")
        for name in ("tau_plus", "tau_minus", "tau_x", "tau_y", "dt"):
            s(name, check_positive(getattr(self, name), name))
        check_choice(self.interaction, "interaction", ("all-to-all", "nearest"))
        check_choice(self.weight_dependence, "weight_dependence", ("additive", "multiplicative"))
        lo = None if self.w_min is None else check_real(self.w_min, "w_min")
        hi = None if self.w_max is None else check_real(self.w_max, "w_max")
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"w_min must be < w_max, got w_min={lo}, w_max={hi}")
        if self.weight_dependence == "multiplicative" and (lo is None or hi is None):
            raise ValueError("multiplicative weight dependence needs both w_min and w_max")
        s("w_min", lo)
        s("w_max", hi)
        taus = [self.tau_plus, self.tau_minus] + ([self.tau_x, self.tau_y] if self.triplet else [])
        if self.dt > min(taus):
            warn(f"dt={self.dt} ms exceeds the shortest STDP time constant ({min(taus)} ms); the window is poorly resolved")

    @classmethod
    def pfister_gerstner(cls, **overrides) -> "STDP":
        """The triplet rule with Pfister & Gerstner's (2006) all-to-all fit to visual-cortex data.

        :math:`A_2^+ = 5\\times10^{-10}`, :math:`A_3^+ = 6.2\\times10^{-3}`,
        :math:`A_2^- = 7\\times10^{-3}`, :math:`A_3^- = 2.3\\times10^{-4}`,
        :math:`\\tau_+ = 16.8`, :math:`\\tau_- = 33.7`, :math:`\\tau_x = 101`,
        :math:`\\tau_y = 125` ms; no weight bounds unless given in ``overrides``.
        """
        params = dict(a_plus=5e-10, a_minus=7e-3, a3_plus=6.2e-3, a3_minus=2.3e-4, tau_plus=16.8, tau_minus=33.7,
                      tau_x=101.0, tau_y=125.0, w_min=None, w_max=None)
        params.update(overrides)
        return cls(**params)

    @property
    def triplet(self) -> bool:
        """True when a triplet term is on (``a3_plus`` or ``a3_minus`` > 0)."""
        return self.a3_plus > 0 or self.a3_minus > 0

    def _keys(self):
        return _PAIR_KEYS + (_TRIPLET_KEYS if self.triplet else ())

    def init_state(self, shape, *, batch_size: int = 1, dtype=None, like=None):
        """Zero traces: ``(batch_size, n_pre)`` for presynaptic, ``(batch_size, n_post)`` for postsynaptic ones."""
        n_post, n_pre = check_shape(shape)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        xp = array_module(like) if like is not None else array_module()
        dtype = resolve_dtype(dtype if dtype is not None else getattr(like, "dtype", None))
        sizes = {"pre_trace": n_pre, "post_trace": n_post, "pre_trace2": n_pre, "post_trace2": n_post}
        return {k: xp.zeros((batch_size, sizes[k]), dtype=dtype) for k in self._keys()}

    def _check_state(self, shape, batch_size, state):
        self._require_state(state, self._keys())
        B = batch_size
        for key in self._keys():
            n = shape[1] if key.startswith("pre") else shape[0]
            if tuple(state[key].shape) != (B, n):
                raise ValueError(f"state[{key!r}] has shape {tuple(state[key].shape)}, expected ({B}, {n}) for a "
                                 f"batch of {B}: state = rule.init_state(W.shape, batch_size={B})")

    def _jump(self, xp, decayed, spikes):
        if self.interaction == "all-to-all":
            return decayed + spikes
        return xp.where(spikes > 0, 1.0, decayed).astype(decayed.dtype, copy=False)

    def _factors(self, pre, post, state, xp):
        r"""The per-neuron factors of this tick and the next state.

        Returns ``(p, x, y, q, new)``: LTP is :math:`\langle p_i x_j\rangle`, LTD
        :math:`\langle y_i q_j\rangle`, with ``p`` (B, n_post) = :math:`S^{post}(A_+ + A_3^+ \tilde o_2)`,
        ``x`` (B, n_pre) the decayed presynaptic trace, ``y`` (B, n_post) the
        decayed postsynaptic trace and ``q`` (B, n_pre) = :math:`S^{pre}(A_- + A_3^- \tilde r_2)`.
        """
        x = state["pre_trace"] * math.exp(-self.dt / self.tau_plus)
        y = state["post_trace"] * math.exp(-self.dt / self.tau_minus)
        new = {}
        if self.triplet:
            r2 = state["pre_trace2"] * math.exp(-self.dt / self.tau_x)
            o2 = state["post_trace2"] * math.exp(-self.dt / self.tau_y)
            p = post * (self.a_plus + self.a3_plus * o2)
            q = pre * (self.a_minus + self.a3_minus * r2)
            new["pre_trace2"] = self._jump(xp, r2, pre)
            new["post_trace2"] = self._jump(xp, o2, post)
        else:
            p = post * self.a_plus
            q = pre * self.a_minus
        new["pre_trace"] = self._jump(xp, x, pre)
        new["post_trace"] = self._jump(xp, y, post)
        return p, x, y, q, new

    def _combine(self, W, ltp, ltd):
        if self.weight_dependence == "multiplicative":
            return (self.w_max - W) * ltp - (W - self.w_min) * ltd
        return ltp - ltd

    def _compute(self, W, pre, post, state, xp):
        B = pre.shape[0]
        p, x, y, q, new = self._factors(pre, post, state, xp)
        return self._combine(W, p.T @ x / B, y.T @ q / B), new

    def _compute_synapses(self, w, i, j, pre, post, state, xp, index=None):
        B = pre.shape[0]
        p, x, y, q, new = self._factors(pre, post, state, xp)
        # only synapses whose postsynaptic (LTP) or presynaptic (LTD) neuron spiked this tick change
        spiking_post = post.any(axis=0)
        spiking_pre = pre.any(axis=0)
        if index is not None:
            hit_p = index.of_post(xp.flatnonzero(spiking_post))
            hit_d = index.of_pre(xp.flatnonzero(spiking_pre))
        else:
            hit_p = xp.flatnonzero(spiking_post[j])
            hit_d = xp.flatnonzero(spiking_pre[i])
        if not hit_d.size:
            ids = hit_p  # each list holds distinct synapses; merge only when both are non-empty
        elif not hit_p.size:
            ids = hit_d
        else:
            ids = xp.unique(xp.concatenate([hit_p, hit_d]))
        dw = xp.zeros(ids.shape[0], dtype=w.dtype)
        if hit_p.size:
            ltp = (p[:, j[hit_p]] * x[:, i[hit_p]]).sum(axis=0) / B
            if self.weight_dependence == "multiplicative":
                ltp *= self.w_max - w[hit_p]
            dw[xp.searchsorted(ids, hit_p) if ids is not hit_p else slice(None)] += ltp
        if hit_d.size:
            ltd = (y[:, j[hit_d]] * q[:, i[hit_d]]).sum(axis=0) / B
            if self.weight_dependence == "multiplicative":
                ltd *= w[hit_d] - self.w_min
            dw[xp.searchsorted(ids, hit_d) if ids is not hit_d else slice(None)] -= ltd
        return ids, dw, new

    def step_synapses(self, w, pre_index, post_index, pre, post, state=None, *, index=None):
        """As :meth:`Rule.step_synapses`; with NumPy arrays, no constraints and an ``index``, one compiled tick.

        The fast path is the registered kernel ``plasticity_stdp_synapses``
        (numba; its NumPy reference is the general path), equal to it.
        """
        if index is None or self.constraints:
            return super().step_synapses(w, pre_index, post_index, pre, post, state, index=index)
        w, i, j, pre, post, xp = self._synapse_inputs(w, pre_index, post_index, pre, post, state)
        if xp is not np or not isinstance(w, np.ndarray):
            return super().step_synapses(w, pre_index, post_index, pre, post, state, index=index)
        from .stdp_kernels import STDP_SYNAPSES_KERNEL  # lazy: numba is imported on first use

        traces = [state[k] for k in ("pre_trace", "post_trace")]
        traces += [state[k] for k in _TRIPLET_KEYS] if self.triplet else [traces[0], traces[1]]
        STDP_SYNAPSES_KERNEL.cpu(w, i.astype(np.int64, copy=False), j.astype(np.int64, copy=False), pre, post,
                                 *traces, *index.arrays, rule=self)
        return w

    def _after_update(self, W, xp) -> None:
        if self.weight_dependence == "additive":
            clip_inplace(W, self.w_min, self.w_max)
