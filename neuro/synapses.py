"""Synapses: CSR storage by presynaptic neuron, delays, Tsodyks-Markram dynamics.

A :class:`Projection` holds the synapses from one population to another,
sorted by presynaptic neuron (CSR: ``indptr`` (n_pre + 1,), ``j`` (S,)), so
a spike touches only its own targets. Each synapse has a weight ``w`` (nA;
a conductance in uS, >= 0, onto a conductance-based population such as
:class:`~neuro.neurons.LIFCond`),
a delay (ms, rounded to whole steps) and, for dynamic synapses, its own
Tsodyks-Markram parameters ``U`` (1), ``D`` (ms), ``F`` (ms).

A spike of neuron ``i`` at step ``n`` adds, for each synapse ``s`` of row
``i``, its amplitude to the ring buffer slot of step ``n + delay_s`` of the
target's excitatory or inhibitory current (the projection's ``receptor``).
The postsynaptic population adds that slot to ``I_e``/``I_i`` (``g_e``/``g_i``)
at the end of step ``n + delay_s``.

Weights are ``(S,)``, shared by the trials of a batch, or ``(B, S)``, one
row per trial (``Projection.per_trial_weights``, for plasticity that keeps
the trials independent); the kernels take either. Static synapses give amplitude ``w``. Tsodyks-Markram synapses (Markram,
Wang & Tsodyks 1998; Maass et al. 2002) give the n-th spike the amplitude
``A_n = w u_n R_n`` with ``u_1 = U``, ``R_1 = 1`` and, for an interval
``dt_n`` between spikes n and n+1::

    u_{n+1} = U + u_n (1 - U) exp(-dt_n / F)
    R_{n+1} = 1 + (R_n - u_n R_n - 1) exp(-dt_n / D)

(R is updated with the old u). The state ``u, R`` and the step of the last
spike are kept per synapse and per trial ((B, S) arrays).

Kernels (NumPy reference and numba fast path, see :mod:`neuro.kernels`):
``spiking_propagate`` (static) and ``spiking_propagate_tm`` (dynamic).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from . import exp64
from .backend import make_rng
from .kernels import register
from .kernels.spiking import SOURCE as SPIKING_SOURCE, launch_propagate, launch_propagate_tm
from .validation import as_param, check_positive

__all__ = ["Projection", "tsodyks_markram"]

#: "never spiked" marker for the step of the last spike (far in the past, no overflow)
NEVER = np.int64(-(1 << 52))

RECEPTORS = ("exc", "inh")


# ------------------------------------------------------------------ kernels


def _targets(spikes, indptr):
    """Trials, rows and synapse indices touched by ``spikes`` (B, n_pre) (NumPy)."""
    b, i = np.nonzero(spikes)
    starts, stops = indptr[i], indptr[i + 1]
    counts = stops - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    trial = np.repeat(b, counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    syn = np.repeat(starts, counts) + offsets
    return trial, syn


def weight_rows(w, batch_size: int):
    """``w`` as weight rows, a view: ``(1, S)`` for weights ``(S,)`` shared by the trials, or ``(B, S)`` as given.

    Per-trial weights ``(B, S)`` must have one row per trial (``ValueError`` otherwise).
    """
    if w.ndim == 1:
        return w[None, :]
    if w.ndim != 2 or w.shape[0] != batch_size:
        raise ValueError(f"w must be (S,) (shared by the trials) or ({batch_size}, S) (one row per trial), "
                         f"got shape {w.shape}")
    return w


def propagate_reference(spikes, indptr, post, w, delay, buf, step):
    """Add ``w`` of every synapse of every spiking neuron to ``buf`` (NumPy reference).

    ``spikes``: bool (B, n_pre); ``indptr`` (n_pre + 1,), ``post``, ``delay``
    (int64 steps): (S,) in CSR order; ``w``: (S,) shared by the trials or
    (B, S) per trial, CSR order; ``buf``: (L, B, n_post) ring buffer, slot
    ``(step + delay) % L`` receives the input.
    """
    w = np.broadcast_to(weight_rows(w, spikes.shape[0]), (spikes.shape[0], w.shape[-1]))
    trial, syn = _targets(spikes, indptr)
    if len(syn):
        slot = (step + delay[syn]) % buf.shape[0]
        np.add.at(buf, (slot, trial, post[syn]), w[trial, syn])


@numba.njit(cache=True, nogil=True)
def _propagate_loop(spikes, indptr, post, w, delay, buf, step):
    L = buf.shape[0]
    B, n_pre = spikes.shape
    for b in range(B):
        row = b if w.shape[0] > 1 else 0  # w: (1, S) shared or (B, S) per trial
        for i in range(n_pre):
            if spikes[b, i]:
                for s in range(indptr[i], indptr[i + 1]):
                    buf[(step + delay[s]) % L, b, post[s]] += w[row, s]


def propagate_cpu(spikes, indptr, post, w, delay, buf, step):
    """Numba loop over the spikes' CSR rows; equal to :func:`propagate_reference`."""
    _propagate_loop(spikes, indptr, post, weight_rows(w, spikes.shape[0]), delay, buf, np.int64(step))


def propagate_tm_reference(spikes, indptr, post, w, delay, U, D, F, u, R, last, buf, step, dt):
    """Tsodyks-Markram propagation (NumPy reference).

    As :func:`propagate_reference` (``w`` (S,) or (B, S)), plus per-synapse
    ``U, D, F`` (S,) and the per-trial state ``u, R`` (B, S) float and
    ``last`` (B, S) int64 (step of the synapse's last spike, :data:`NEVER`
    before the first), updated in place; the amplitude is ``w u R`` after the update.
    """
    w = np.broadcast_to(weight_rows(w, spikes.shape[0]), (spikes.shape[0], w.shape[-1]))
    trial, syn = _targets(spikes, indptr)
    if not len(syn):
        return
    isi = (step - last[trial, syn]) * dt
    u_old, R_old = u[trial, syn], R[trial, syn]
    R_new = 1.0 + (R_old - u_old * R_old - 1.0) * exp64.exp_array(-isi / D[syn])
    u_new = U[syn] + u_old * (1.0 - U[syn]) * exp64.exp_array(-isi / F[syn])
    u[trial, syn] = u_new
    R[trial, syn] = R_new
    last[trial, syn] = step
    slot = (step + delay[syn]) % buf.shape[0]
    np.add.at(buf, (slot, trial, post[syn]), w[trial, syn] * u_new * R_new)


@numba.njit(cache=True, nogil=True, inline="always")
def tm_spike(U, D, F, u, R, last, b, s, step, dt):
    """A spike at tick ``step`` on Tsodyks-Markram synapse ``s`` of trial ``b``; returns ``u_n R_n``.

    With ``isi`` the time since the synapse's last spike (ms):
    ``R_n = 1 + (R - u R - 1) exp(-isi / D)`` (from the old ``u``) and
    ``u_n = U + u (1 - U) exp(-isi / F)``; ``u``, ``R`` and ``last`` are updated in place.
    """
    isi = (step - last[b, s]) * dt
    u_old = u[b, s]
    R_old = R[b, s]
    R_new = 1.0 + (R_old - u_old * R_old - 1.0) * exp64.exp(-isi / D[s])
    u_new = U[s] + u_old * (1.0 - U[s]) * exp64.exp(-isi / F[s])
    u[b, s] = u_new
    R[b, s] = R_new
    last[b, s] = step
    return u_new * R_new


@numba.njit(cache=True, nogil=True)
def _propagate_tm_loop(spikes, indptr, post, w, delay, U, D, F, u, R, last, buf, step, dt):
    L = buf.shape[0]
    B, n_pre = spikes.shape
    for b in range(B):
        row = b if w.shape[0] > 1 else 0  # w: (1, S) shared or (B, S) per trial
        for i in range(n_pre):
            if spikes[b, i]:
                for s in range(indptr[i], indptr[i + 1]):
                    efficacy = tm_spike(U, D, F, u, R, last, b, s, step, dt)
                    buf[(step + delay[s]) % L, b, post[s]] += w[row, s] * efficacy


def propagate_tm_cpu(spikes, indptr, post, w, delay, U, D, F, u, R, last, buf, step, dt):
    """Numba loop; equal to :func:`propagate_tm_reference`."""
    _propagate_tm_loop(spikes, indptr, post, weight_rows(w, spikes.shape[0]), delay, U, D, F, u, R, last, buf,
                       np.int64(step), float(dt))


PROPAGATE_KERNEL = register(
    "spiking_propagate", reference=propagate_reference, cpu=propagate_cpu, cuda_source=SPIKING_SOURCE,
    cuda_function="spiking_propagate", cuda_launch=launch_propagate,
    doc="event-driven spike propagation through CSR synapses with delays into a ring buffer (CUDA: atomicAdd)",
)
PROPAGATE_TM_KERNEL = register(
    "spiking_propagate_tm", reference=propagate_tm_reference, cpu=propagate_tm_cpu, cuda_source=SPIKING_SOURCE,
    cuda_function="spiking_propagate_tm", cuda_launch=launch_propagate_tm,
    doc="as spiking_propagate, with Tsodyks-Markram dynamic synapses",
)


# ------------------------------------------------------------ standalone TM


def tsodyks_markram(spike_times, U: float, D: float, F: float, w: float = 1.0) -> np.ndarray:
    """Amplitudes ``A_n = w u_n R_n`` of one dynamic synapse for a spike train.

    ``spike_times`` (n,) increasing, ms; ``U`` in (0, 1]; ``D``, ``F`` ms.
    Returns (n,) amplitudes (units of ``w``).
    """
    t = np.asarray(spike_times, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"spike_times must be 1-D, got shape {t.shape}")
    if np.any(np.diff(t) <= 0):
        raise ValueError("spike_times must be strictly increasing")
    if not 0 < U <= 1:
        raise ValueError(f"U must be in (0, 1], got {U}")
    D, F = check_positive(D, "D"), check_positive(F, "F")
    out = np.empty(len(t))
    u, R = U, 1.0
    for n in range(len(t)):
        if n:
            isi = t[n] - t[n - 1]
            R = 1.0 + (R - u * R - 1.0) * float(exp64.exp_array(-isi / D))
            u = U + u * (1.0 - U) * float(exp64.exp_array(-isi / F))
        out[n] = w * u * R
    return out


# ---------------------------------------------------------------- Projection

ParamSpec = Any  # scalar, (S,) array in the order of the given (i, j), or callable(rng, S) -> (S,)


def _per_synapse(spec: ParamSpec, n: int, name: str, rng, *, positive=False, nonneg=False, unit_interval=False):
    """``spec`` (a scalar, an ``(n,)`` array or a callable ``(rng, n) -> (n,)``) as a new checked ``(n,)`` array."""
    arr = as_param(spec(rng, n) if callable(spec) else spec, n, name, positive=positive, nonneg=nonneg)
    if unit_interval and np.any((arr <= 0) | (arr > 1)):
        raise ValueError(f"{name} must be in (0, 1]")
    return arr


class Projection:
    """Synapses from population ``pre`` to ``post``, stored CSR by presynaptic neuron.

    Made by :meth:`neuro.Network.connect`; read by monitors and plasticity.

    The synapse arrays are all ``(S,)``, in CSR order (sorted by presynaptic neuron).

    Attributes
    ----------
    i, j : int64, presynaptic and postsynaptic index of each synapse
    indptr : int64 (n_pre + 1,), synapses of neuron ``k`` are ``indptr[k]:indptr[k+1]``
    w : float64, weight (nA, or uS onto a conductance-based population; the
        maximal amplitude ``A`` for dynamic synapses): ``(S,)``, shared by all
        trials of a batch, or ``(B, S)``, one row per trial, for per-trial
        weights (below). May be changed between steps (plasticity).
    per_trial_weights : bool (default False; ``plasticity.attach_to_network``
        sets it): then each :meth:`neuro.Network.reset` to ``B`` trials makes
        ``w`` a new ``(B, S)`` array, every row a copy of ``w_init``, so the
        trials are independent networks whose weights may diverge. ``w_init``
        ``(S,)`` is taken from ``w`` by a reset that finds ``w`` one-dimensional
        (the first reset, or one after an ``(S,)`` array was assigned to ``w``);
        a reset that finds ``w`` ``(B', S)`` (the weights a previous run left)
        starts again from ``w_init``. So: writing into ``w`` after a reset
        (``proj.w[...] = x``, ``x`` ``(S,)`` or ``(B, S)``) changes the current
        trials only; to change where every later reset starts, write
        ``proj.w_init[...] = x`` or assign ``proj.w = x`` with ``x`` ``(S,)``.
    delay : float64, ms (as given); ``delay_steps`` the int64 steps used, derived from ``delay`` at
        every reset (a new array when they change, the same one when they do not)
    receptor : ``"exc"`` or ``"inh"``: which synaptic current (conductance) of ``post`` it feeds
    dynamic : bool, Tsodyks-Markram synapses; then ``U, D, F`` (S,) and the
        per-trial state ``u, R`` (B, S), ``last`` (B, S) int64.
    """

    def __init__(self, pre, post, i, j, *, weight: ParamSpec, delay: ParamSpec = 0.0, receptor: str | None = None,
                 U: ParamSpec | None = None, D: ParamSpec | None = None, F: ParamSpec | None = None,
                 name: str = "", seed=None):
        self.pre, self.post, self.name = pre, post, name
        i = np.asarray(i)
        j = np.asarray(j)
        if i.ndim != 1 or j.shape != i.shape:
            raise ValueError(f"i and j must be 1-D arrays of the same length, got shapes {i.shape} and {j.shape}")
        if len(i) and (i.dtype.kind not in "iu" or j.dtype.kind not in "iu"):
            raise TypeError("i and j must be integer arrays")
        i, j = i.astype(np.int64), j.astype(np.int64)
        if len(i) and (i.min() < 0 or i.max() >= pre.n):
            raise ValueError(f"i must index the {pre.n} neurons of {pre.name!r}")
        if len(j) and (j.min() < 0 or j.max() >= post.n):
            raise ValueError(f"j must index the {post.n} neurons of {post.name!r}")
        rng = make_rng(seed)
        n = len(i)
        w = _per_synapse(weight, n, "weight", rng)
        d = _per_synapse(delay, n, "delay", rng, nonneg=True)
        dynamic = U is not None or D is not None or F is not None
        if dynamic:
            if U is None or D is None or F is None:
                raise ValueError("dynamic (Tsodyks-Markram) synapses need all of U, D and F")
            tm = (_per_synapse(U, n, "U", rng, unit_interval=True), _per_synapse(D, n, "D", rng, positive=True),
                  _per_synapse(F, n, "F", rng, positive=True))
        if post.model.synaptic_vars[0] == "g_e":  # conductance-based target
            if receptor is None:
                raise ValueError(f"{post.name!r} has conductance-based synapses: give receptor='exc' or 'inh' "
                                 "(the weights are conductances >= 0, so their sign cannot tell)")
            if np.any(w < 0):
                raise ValueError(f"weight onto the conductance-based {post.name!r} must be >= 0 (a conductance in uS)")
        if receptor is None:
            if np.all(w >= 0):
                receptor = "exc"
            elif np.all(w <= 0):
                receptor = "inh"
            else:
                raise ValueError("weights have both signs: give receptor='exc' or 'inh'")
        if receptor not in RECEPTORS:
            raise ValueError(f"receptor must be one of {RECEPTORS}, got {receptor!r}")
        order = np.lexsort((j, i))
        self.i, self.j = i[order], j[order]
        self.w, self.delay = w[order], d[order]
        self.indptr = np.zeros(pre.n + 1, np.int64)
        np.cumsum(np.bincount(self.i, minlength=pre.n), out=self.indptr[1:])
        self.receptor = receptor
        self.dynamic = dynamic
        if dynamic:
            self.U, self.D, self.F = (x[order] for x in tm)
        self.delay_steps = np.zeros(n, np.int64)
        self._one_delay_steps = None  # the steps of every synapse, when _prepare found them all the same
        self.u = self.R = self.last = None
        self.per_trial_weights = False
        self.w_init = None

    @property
    def n_synapses(self) -> int:
        return len(self.i)

    def __repr__(self) -> str:
        kind = "tsodyks-markram" if self.dynamic else "static"
        return f"Projection({self.pre.name!r} -> {self.post.name!r}, {self.n_synapses} {kind} synapses, {self.receptor})"

    def weight_matrix(self, trial: int | None = None) -> np.ndarray:
        """Dense weights (n_post, n_pre) (``post = W @ pre``); multiple synapses of a pair are summed.

        Per-trial weights (``w`` ``(B, S)``): trial ``trial``'s matrix, or with
        ``trial=None`` all of them, ``(B, n_post, n_pre)``. Shared weights
        ``(S,)`` are every trial's: ``trial`` is ignored.
        """
        if self.w.ndim == 1:
            return self._dense(self.w)
        B = self.w.shape[0]
        if trial is not None:
            if isinstance(trial, bool) or not isinstance(trial, (int, np.integer)) or not 0 <= trial < B:
                raise ValueError(f"trial must be an int in [0, {B}) (the trials of the per-trial weights) or None, "
                                 f"got {trial!r}")
            return self._dense(self.w[trial])
        return np.stack([self._dense(row) for row in self.w])

    def _dense(self, w) -> np.ndarray:
        W = np.zeros((self.post.n, self.pre.n))
        np.add.at(W, (self.j, self.i), w)
        return W

    def _start_trials(self, batch_size: int) -> None:
        """Per-trial weights: ``w`` becomes ``(batch_size, S)`` copies of ``w_init`` (taken from a 1-D ``w``)."""
        if self.w.ndim == 1:
            self.w_init = self.w.copy()
        self.w = np.tile(self.w_init, (batch_size, 1))

    def _prepare(self, dt: float, batch_size: int, dtype=np.float64) -> None:
        """Round delays to steps and reset the per-trial weights and dynamic state for ``batch_size`` trials."""
        d = self.delay
        if len(d) and d.min() == d.max():  # one delay: rounded once, the array kept while it stays the same
            k = int(np.round(d[0] / dt))
            if self._one_delay_steps != k or len(self.delay_steps) != len(d):
                self.delay_steps = np.full(len(d), k, np.int64)
                self._one_delay_steps = k
        else:
            self.delay_steps = np.round(d / dt).astype(np.int64)
            self._one_delay_steps = None
        if self.per_trial_weights:
            self._start_trials(batch_size)
        if self.dynamic:
            S = self.n_synapses
            self.u = np.broadcast_to(self.U, (batch_size, S)).astype(dtype)
            self.R = np.ones((batch_size, S), dtype)
            self.last = np.full((batch_size, S), NEVER, np.int64)

    def _propagate(self, spikes, buf, step, dt, impl: str) -> None:
        if self.dynamic:
            fn = PROPAGATE_TM_KERNEL.cpu if impl == "cpu" else PROPAGATE_TM_KERNEL.reference
            fn(spikes, self.indptr, self.j, self.w, self.delay_steps, self.U, self.D, self.F,
               self.u, self.R, self.last, buf, step, dt)
        else:
            fn = PROPAGATE_KERNEL.cpu if impl == "cpu" else PROPAGATE_KERNEL.reference
            fn(spikes, self.indptr, self.j, self.w, self.delay_steps, buf, step)
