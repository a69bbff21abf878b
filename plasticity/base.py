r"""The one interface every weight rule shares.

A rule is a small, validated, immutable spec holding only hyperparameters::

    rule = Oja(lr=0.01)
    state = rule.init_state(W.shape)          # None for stateless rules
    dW = rule.delta(W, pre, post, state)      # pure: nothing is modified
    rule.step(W, pre, post, state)            # W += dW, constraints, state advanced (in place)

Shapes: ``W`` is ``(n_post, n_pre)`` (so ``post = W @ pre``), ``pre`` is
``(B, n_pre)`` and ``post`` is ``(B, n_post)``; a 1-D ``pre``/``post`` is one
presentation. The batch is **averaged**: ``delta`` on a batch of ``B`` equals
the mean of the ``B`` single-presentation deltas taken from the same state
(constraint transforms such as soft bounds then act on that mean), and one
``step`` on a batch counts as one presentation (or one tick ``dt``) for the
rule's state. Synapse lists (``step_synapses``) also take per-trial weights
``(B, S)``: then trial ``b`` updates row ``b`` alone, as a batch of one (no
averaging), for rules whose state is kept per trial (``trial_state``).

Time: rate rules count time in presentations unless ``dt`` is given; with
``dt`` the learning rate and time constants are per unit of time and each
step advances time by ``dt`` (so ``lr`` becomes ``lr * dt`` per step).
Arrays may be NumPy or CuPy (the module of ``W`` is used throughout).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from neuro.backend import array_module

from neuro.validation import check_optional_positive, check_positive
from .constraints import Clip, Constraint, apply_projections, apply_transforms, check_constraints

__all__ = ["Rule", "as_batch"]


def as_batch(name: str, x, xp, n: int, dtype):
    """``x`` as a ``(B, n)`` array of ``dtype`` on ``xp`` (1-D means ``B = 1``)."""
    a = xp.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n:
        raise ValueError(f"{name} must have shape (B, {n}) or ({n},), got {tuple(xp.asarray(x).shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one presentation (B >= 1), got an empty batch")
    return a.astype(dtype, copy=False)


def check_spikes(name: str, x, xp) -> None:
    """Spikes must be boolean or hold only 0 and 1; ``ValueError`` naming ``name`` otherwise (0.5 is no spike)."""
    a = xp.asarray(x)
    if a.dtype.kind == "b" or a.size == 0:
        return
    if a.dtype.kind not in "biuf" or not bool(((a == 0) | (a == 1)).all()):
        raise ValueError(f"{name} must hold spikes: booleans or 0/1 values, got dtype {a.dtype} with other values")


def check_weights(W, xp=None):
    xp = xp or array_module(W)
    if not hasattr(W, "ndim") or W.ndim != 2:
        raise ValueError(f"W must be a 2-D array (n_post, n_pre), got {getattr(W, 'shape', type(W).__name__)}")
    if W.dtype.kind != "f":
        raise TypeError(f"W must be a floating array (it is updated in place), got dtype {W.dtype}")
    return W


def check_shape(shape) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a pair (n_post, n_pre), got {shape!r}") from None
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be a pair of positive ints (n_post, n_pre), got {shape}")
    return shape


@dataclass(frozen=True)
class Rule:
    """Base class of the weight rules (see the module docstring for the contract).

    Subclasses implement ``_compute(W, pre, post, state, xp) -> (dW, new_state)``
    (pure; ``dW`` includes the learning rate; ``new_state`` is a dict of the
    state's next values or ``None``) and, when stateful, ``init_state``.
    """

    constraints: tuple = field(default=(), kw_only=True)

    #: "rate" rules take real-valued activities; "spike" rules take boolean spikes per tick.
    kind = "rate"

    def __post_init__(self):
        object.__setattr__(self, "constraints", check_constraints(self.constraints))
        if "lr" in {f.name for f in fields(self)}:
            object.__setattr__(self, "lr", check_positive(self.lr, "lr"))

    # ------------------------------------------------------------ interface

    def init_state(self, shape, *, batch_size: int = 1, dtype=None, like=None):
        """The rule's state for weights of ``shape`` ``(n_post, n_pre)``; ``None`` here (stateless)."""
        check_shape(shape)
        return None

    def delta(self, W, pre, post, state=None):
        """The weight change ``dW`` (shape of ``W``) for one step; pure (nothing is modified).

        ``pre``: ``(B, n_pre)``, ``post``: ``(B, n_post)``; the change is the
        batch average. Constraint ``transform`` hooks (soft bounds) are included,
        ``project`` hooks (clipping, normalization) are not: they act in ``step``.
        """
        W, pre, post, xp = self._inputs(W, pre, post, state)
        dW, _ = self._compute(W, pre, post, state, xp)
        return apply_transforms(self.constraints, W, dW)

    def step(self, W, pre, post, state=None):
        """Apply one step in place: ``W += delta``, then the constraints' projections; the state advances.

        Returns ``W`` (the same array).
        """
        W, pre, post, xp = self._inputs(W, pre, post, state)
        dW, new_state = self._compute(W, pre, post, state, xp)
        dW = apply_transforms(self.constraints, W, dW)
        W += dW
        self._after_update(W, xp)
        apply_projections(self.constraints, W)
        self._write_state(state, new_state)
        return W

    # ------------------------------------------------- synapse lists (sparse)

    def delta_synapses(self, w, pre_index, post_index, pre, post, state=None):
        """As :meth:`delta` for weights stored as a list of synapses (CSR data, a ``neuro`` projection).

        ``w`` ``(S,)``: the weights, shared by the ``B`` trials (the change is
        their average); synapse ``s`` connects presynaptic neuron
        ``pre_index[s]`` to postsynaptic neuron ``post_index[s]``
        (``W[post_index[s], pre_index[s]] = w[s]``); ``pre`` ``(B, n_pre)``,
        ``post`` ``(B, n_post)``. Returns ``dw`` ``(S,)``, equal to the dense
        ``delta`` read at the synapses. Per-trial weights ``w`` ``(B, S)``:
        row ``b`` changes by the delta of trial ``b`` alone; returns ``(B, S)``.
        Only rules local to a synapse support this (not :class:`~plasticity.Sanger`).
        """
        w, i, j, pre, post, xp = self._synapse_inputs(w, pre_index, post_index, pre, post, state)
        if w.ndim == 2:
            return xp.stack([Rule.delta_synapses(self, *args) for args in self._trials(w, i, j, pre, post, state)])
        ids, dw, _ = self._compute_synapses(w, i, j, pre, post, state, xp, index=None)
        if ids is None:
            return apply_transforms(self.constraints, w, dw)
        full = xp.zeros_like(w)
        full[ids] = apply_transforms(self.constraints, w[ids], dw)
        return full

    def step_synapses(self, w, pre_index, post_index, pre, post, state=None, *, index=None):
        """As :meth:`step` for a synapse list (see :meth:`delta_synapses`); updates ``w`` in place and returns it.

        Element-wise constraints only (``SoftBounds``, ``Clip``); row
        normalizations need the dense matrix and raise ``ValueError``.
        Spike rules change (and clip) only the synapses of the neurons that
        spiked in this tick; ``index``, an optional
        :class:`~plasticity.SynapseIndex` of this connectivity, finds those
        synapses without a pass over all ``S`` (same result, less work).
        Per-trial weights ``w`` ``(B, S)``: each trial ``b`` steps row ``b``
        with its own spikes and its own rows of the state, as a batch of one.
        """
        w, i, j, pre, post, xp = self._synapse_inputs(w, pre_index, post_index, pre, post, state)
        if w.ndim == 2:
            for args in self._trials(w, i, j, pre, post, state):
                Rule.step_synapses(self, *args, index=index)
            return w
        ids, dw, new_state = self._compute_synapses(w, i, j, pre, post, state, xp, index=index)
        if ids is None:
            w += apply_transforms(self.constraints, w, dw)
            self._after_update(w, xp)
            apply_projections(self.constraints, w)
        elif ids.size:
            sub = w[ids]
            sub += apply_transforms(self.constraints, sub, dw)
            self._after_update(sub, xp)
            apply_projections(self.constraints, sub)
            w[ids] = sub
        self._write_state(state, new_state)
        return w

    def check_synapse_support(self) -> None:
        """Raise ``TypeError``/``ValueError`` if this rule cannot run on a synapse list."""
        if not self.local:
            raise TypeError(f"{type(self).__name__} is not local to a synapse (it needs the whole weight matrix); "
                            "use the dense delta/step")
        for c in self.constraints:
            if type(c).project is not Constraint.project and not isinstance(c, Clip):
                raise ValueError(f"{type(c).__name__} acts on whole rows: it cannot constrain a synapse list")

    def _synapse_inputs(self, w, pre_index, post_index, pre, post, state):
        self.check_synapse_support()
        xp = array_module(w, pre, post)
        if not hasattr(w, "ndim") or w.ndim not in (1, 2) or w.dtype.kind != "f":
            raise ValueError("w must be a floating array (S,) (shared by the trials) or (B, S) (per trial), "
                             f"got {getattr(w, 'shape', type(w).__name__)}")
        S = w.shape[-1]
        i, j = xp.asarray(pre_index), xp.asarray(post_index)
        if i.shape != (S,) or j.shape != (S,) or (S and (i.dtype.kind not in "iu" or j.dtype.kind not in "iu")):
            raise ValueError(f"pre_index and post_index must be int arrays of shape ({S},) (one per synapse)")
        pre, post = xp.asarray(pre), xp.asarray(post)
        if self.kind == "spike":
            check_spikes("pre", pre, xp)
            check_spikes("post", post, xp)
        if pre.ndim == 1:
            pre = pre[None, :]
        if post.ndim == 1:
            post = post[None, :]
        if pre.ndim != 2 or post.ndim != 2 or pre.shape[0] != post.shape[0] or pre.shape[0] == 0:
            raise ValueError(f"pre (B, n_pre) and post (B, n_post) must share a batch size B >= 1, "
                             f"got {tuple(pre.shape)} and {tuple(post.shape)}")
        if w.ndim == 2 and w.shape[0] != pre.shape[0]:
            raise ValueError(f"per-trial weights w (B, S) need one row per trial: got {w.shape[0]} rows for "
                             f"B = {pre.shape[0]} trials")
        pre, post = pre.astype(w.dtype, copy=False), post.astype(w.dtype, copy=False)
        self._check_state((post.shape[1], pre.shape[1]), pre.shape[0], state)
        return w, i, j, pre, post, xp

    def _trials(self, w, i, j, pre, post, state):
        """Per-trial weights ``w`` ``(B, S)``: the arguments of trial ``b``'s batch-of-one call, for each ``b``.

        Views throughout, so a call that updates row ``b`` of ``w`` or of the
        state updates the caller's arrays.
        """
        if state is not None and not self.trial_state:
            raise ValueError(f"{type(self).__name__} keeps one state for all trials ({sorted(state)}), so its "
                             "trials cannot learn independently: use weights (S,) shared by the trials")
        for b in range(w.shape[0]):
            state_b = None if state is None else {k: v[b:b + 1] for k, v in state.items()}
            yield w[b], i, j, pre[b:b + 1], post[b:b + 1], state_b

    def _compute_synapses(self, w, i, j, pre, post, state, xp, index=None):  # pragma: no cover - abstract
        """``(ids, dw, new_state)``: the change ``dw`` of synapses ``ids`` (``None``: all ``S``)."""
        raise NotImplementedError

    # ------------------------------------------------------------- helpers

    #: whether the change of W[j, i] depends only on neurons i, j and W[j, i] (synapse lists work)
    local = True

    #: whether the state (if any) keeps one row per trial, ``(B, ...)``: per-trial weights need it
    trial_state = True

    def _after_update(self, W, xp) -> None:
        """Hook for rule-specific projections (e.g. STDP's hard bounds)."""

    def _compute(self, W, pre, post, state, xp):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _write_state(state, new_state) -> None:
        if new_state is not None:
            for key, value in new_state.items():
                state[key][...] = value

    def _inputs(self, W, pre, post, state):
        xp = array_module(W, pre, post)
        check_weights(W, xp)
        n_post, n_pre = W.shape
        if self.kind == "spike":
            check_spikes("pre", pre, xp)
            check_spikes("post", post, xp)
        pre = as_batch("pre", pre, xp, n_pre, W.dtype)
        post = as_batch("post", post, xp, n_post, W.dtype)
        if pre.shape[0] != post.shape[0]:
            raise ValueError(f"pre and post must have the same batch size, got {pre.shape[0]} and {post.shape[0]}")
        self._check_state(W.shape, pre.shape[0], state)
        return W, pre, post, xp

    def _check_state(self, shape, batch_size, state) -> None:
        if state is not None:
            raise ValueError(f"{type(self).__name__} is stateless: pass state=None, got {type(state).__name__}")

    def _require_state(self, state, keys) -> None:
        name = type(self).__name__
        if not isinstance(state, dict) or any(k not in state for k in keys):
            raise ValueError(f"{name} needs its state (a dict with {sorted(keys)}): state = rule.init_state(W.shape)")


def time_step(dt) -> float:
    """The step length: ``dt`` if given, else one presentation (1.0)."""
    return 1.0 if dt is None else dt


def validated_dt(dt):
    return check_optional_positive(dt, "dt")
