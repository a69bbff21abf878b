r"""Where rules attach: spiking projections, ANN layers, echo-state networks, coupled components.

Nothing here imports ``ann`` or ``reservoirs`` (the layering of DESIGN.md):
layers and reservoirs are used through their plain arrays (duck typing), and
``neuro`` only through the objects handed in.

* :func:`attach_to_network` runs a local rule on a ``neuro`` projection's CSR
  weights after every step of a :class:`neuro.Network` (STDP on spikes).
* :func:`attach_to_simulator` runs a rule on a weighted connection of a
  :class:`neuro.Simulator` after every tick (or every ``k`` ticks).
* :func:`step_layer` applies a rule to an ``ann.nn.Linear``-like layer's
  ``weight`` (no backprop): Hebbian feature layers that feed a trained readout.
* :func:`adapt_esn` adapts an echo-state network's recurrent or input weights
  (and/or its units' gains and biases by intrinsic plasticity) during an
  adaptation phase, then re-checks the spectral radius.
* :class:`PlasticSynapses` is a component of the coupling protocol
  (``reset(batch_size, seed)``, ``step(t, inputs)``, ``ports``), so a rule
  runs inside a ``neuro.Simulator`` or any loop that speaks the protocol.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from neuro.backend import array_module, asnumpy, make_rng

from neuro.validation import check_choice

from ._checks import warn
from .base import Rule
from .divergence import DivergenceWatch
from .intrinsic import IntrinsicPlasticity
from .stdp import STDP
from .synapse_index import SynapseIndex
from .train import activation_function

__all__ = ["ProjectionPlasticity", "attach_to_network", "SimulatorPlasticity", "attach_to_simulator", "step_layer",
           "adapt_esn", "ESNAdaptation", "PlasticSynapses"]


def _check_rule(rule) -> Rule:
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be a plasticity rule (Oja, BCM, STDP, ...), got {type(rule).__name__}")
    return rule


# ------------------------------------------------------------ spiking network


class ProjectionPlasticity:
    """A rule bound to one projection of a :class:`neuro.Network`; the network calls it after each step.

    Made by :func:`attach_to_network`. ``weights`` is ``"per_trial"`` or
    ``"shared"``. ``state`` holds the rule's state (STDP: one trace per
    neuron and trial, ``(B, n)``); it is created afresh on the first step
    after every ``net.reset`` (step 0).
    """

    #: spike rules touch few synapses a step: the divergence watch scans the weights every this many steps
    WATCH_EVERY = 100

    def __init__(self, net, projection, rule: Rule, on_nonfinite: str = "raise", weights: str = "per_trial"):
        self.watch = DivergenceWatch(rule, on_nonfinite, every=self.WATCH_EVERY)
        # no reference to net: net.hooks holds this hook, and the network passes itself to __call__
        self.projection, self.rule, self.weights = projection, rule, weights
        self.state = None
        self._shape = (projection.post.n, projection.pre.n)
        # the connectivity of a projection is fixed: index it once
        self.index = SynapseIndex(projection.i, projection.j, projection.pre.n, projection.post.n)
        # STDP without extra constraints on NumPy weights: call the compiled tick directly (validated here, once)
        self._kernel = None
        if isinstance(rule, STDP) and not rule.constraints and isinstance(projection.w, np.ndarray) \
                and projection.w.dtype.kind == "f":
            from .stdp_kernels import STDP_SYNAPSES_KERNEL

            self._kernel = STDP_SYNAPSES_KERNEL.cpu
            self._i = np.ascontiguousarray(projection.i, dtype=np.int64)
            self._j = np.ascontiguousarray(projection.j, dtype=np.int64)

    def __call__(self, net, step: int) -> None:
        proj = self.projection
        pre, post = proj.pre.spikes, proj.post.spikes
        B = pre.shape[0]
        if step == 0 or self.state is None or self._batch != B:
            self.state = self.rule.init_state(self._shape, batch_size=B, like=proj.w)
            self._batch = B
            st = self.state
            self._traces = (st["pre_trace"], st["post_trace"], st.get("pre_trace2", st["pre_trace"]),
                            st.get("post_trace2", st["post_trace"]))
        if self._kernel is not None:
            self._kernel(proj.w, self._i, self._j, pre, post, *self._traces, *self.index.arrays, rule=self.rule)
        else:
            self.rule.step_synapses(proj.w, proj.i, proj.j, pre, post, self.state, index=self.index)
        self.watch(proj.w, step + 1)

    _batch = None


#: the ``weights=`` of :func:`attach_to_network`
WEIGHT_MODES = ("per_trial", "shared")


def attach_to_network(net, projection, rule: Rule, *, weights: str = "per_trial",
                      on_nonfinite: str = "raise") -> ProjectionPlasticity:
    r"""Run ``rule`` on ``projection.w`` (CSR synapse list, nA) after every step of ``net``.

    Each step the rule sees the spikes of that step, ``pre = projection.pre.spikes``
    ``(B, n_pre)`` and ``post = projection.post.spikes`` ``(B, n_post)``, and
    changes ``projection.w`` in place through :meth:`Rule.step_synapses`, so
    the next step's propagation uses the new weights. Spike rules must have
    ``rule.dt == net.dt``. Only the ``"neuro"`` engine calls hooks (not a Brian2 run).

    **Batch axis** (``weights``; per-neuron traces are always kept per trial):

    * ``"per_trial"`` (default): each of the network's ``B`` trials has its
      own weights and learns from its own spikes alone, so ``B`` trials are
      ``B`` independent plastic networks: trial ``b`` equals a run of one
      trial with trial ``b``'s seed. The projection gets
      ``per_trial_weights = True``: every ``net.reset(batch_size=B)`` makes
      ``projection.w`` ``(B, S)``, each row a copy of ``projection.w_init``
      ``(S,)`` (the weights before the first reset; see
      :class:`neuro.synapses.Projection` for how to change them), and
      ``projection.weight_matrix(trial=b)`` is trial ``b``'s matrix.
      Attached to a network already reset, the trials start from the
      current weights. Needs a rule whose state is kept per trial (not
      ``BCM`` or ``Covariance``).
    * ``"shared"``: the ``B`` trials share one weight vector ``(S,)`` and
      the change is the average over the trials.

    **Changed in 0.2.0**: the default was the shared, averaged update; pass
    ``weights="shared"`` for it. All rules on one projection use one mode.

    Diverging weights (NaN/inf, checked every 100 steps) raise ``FloatingPointError``
    naming the rule and the step, or warn once with ``on_nonfinite="warn"``.

    Returns the :class:`ProjectionPlasticity` hook (its ``state`` holds the traces).
    """
    _check_rule(rule)
    rule.check_synapse_support()
    check_choice(weights, "weights", WEIGHT_MODES)
    if not any(projection is p for p in getattr(net, "projections", ())):
        raise ValueError("projection must be a projection of net (made by net.connect)")
    if rule.kind == "spike" and not math.isclose(rule.dt, net.dt, rel_tol=1e-9):
        raise ValueError(f"rule.dt ({rule.dt} ms) must equal the network's dt ({net.dt} ms)")
    per_trial = weights == "per_trial"
    if per_trial and not rule.trial_state:
        raise ValueError(f"{type(rule).__name__} keeps one state for all trials, so its trials cannot learn "
                         "independently: use weights='shared'")
    attached = any(isinstance(fn, ProjectionPlasticity) and fn.projection is projection for fn, _ in net.hooks)
    mode = "per_trial" if projection.per_trial_weights else ("shared" if attached else weights)
    if mode != weights:
        raise ValueError(f"weights={weights!r}, but this projection's weights are already {mode!r}: "
                         "all rules on one projection use one weights mode")
    hook = ProjectionPlasticity(net, projection, rule, on_nonfinite, weights)
    if per_trial and not projection.per_trial_weights:
        projection.per_trial_weights = True
        if net.batch_size is not None:  # already reset: the trials get their own copies now
            projection._start_trials(net.batch_size)
    net.add_hook(hook, every=1)
    return hook


# ---------------------------------------------------------- neuro.Simulator


class SimulatorPlasticity:
    """A rule bound to one weighted connection of a :class:`neuro.Simulator`; the simulator calls it after each tick.

    Made by :func:`attach_to_simulator`. ``W`` is the connection's weight
    matrix (updated in place), ``state`` the rule's state (created afresh
    at tick 0 and whenever the batch size changes).
    """

    def __init__(self, connection, pre: tuple[str, str], post: tuple[str, str], rule: Rule,
                 on_nonfinite: str = "raise"):
        self.connection, self.pre, self.post, self.rule = connection, pre, post, rule
        self.watch = DivergenceWatch(rule, on_nonfinite)
        self.W = connection.weight
        self.state = None
        self._batch = None

    def __call__(self, sim, tick: int) -> None:
        pre = sim.outputs[self.pre[0]][self.pre[1]]
        post = sim.outputs[self.post[0]][self.post[1]]
        B = pre.shape[0]
        if tick == 0 or self.state is None or self._batch != B:
            self.state = self.rule.init_state(self.W.shape, batch_size=B, like=self.W)
            self._batch = B
        self.rule.step(self.W, pre, post, self.state)
        self.watch(self.W, tick + 1)


def attach_to_simulator(sim, source: str, target: str, rule: Rule, *, post: str, every: int = 1,
                        on_nonfinite: str = "raise") -> SimulatorPlasticity:
    r"""Run ``rule`` on the weight matrix of the connection ``source -> target`` of a :class:`neuro.Simulator`.

    ``source`` and ``target`` are the ports the connection was made with
    (``sim.connect(source, target, weight=W)``, ``W`` ``(n_target, n_source)``);
    ``post`` is the output port holding the postsynaptic activity (e.g. the
    target population's ``"net.out.spikes"``). After each ``every``-th tick
    the rule sees ``pre`` = this tick's ``source`` output and ``post`` = this
    tick's ``post`` output, both ``(B, n)``, and changes ``W`` in place (the
    batch of trials is averaged: one shared matrix). Spike rules need
    ``rule.dt == sim.dt`` and ``every=1``. Diverging weights raise ``FloatingPointError``
    naming the rule and the tick (``on_nonfinite="warn"``: one warning). Returns the hook.
    """
    _check_rule(rule)
    found = [c for c in getattr(sim, "connections", ()) if c.source[:2] == tuple(source.split(".", 1))
             and c.target[:2] == tuple(target.split(".", 1))]
    if len(found) != 1:
        raise ValueError(f"sim has {len(found)} connections {source!r} -> {target!r}; need exactly one")
    conn = found[0]
    if not (hasattr(conn.weight, "ndim") and conn.weight.ndim == 2):
        raise ValueError("the connection needs a weight matrix (n_target, n_source) for a rule to change")
    p_comp, _, p_port = post.partition(".") if isinstance(post, str) else ("", "", "")
    comp = getattr(sim, "components", {}).get(p_comp)
    if comp is None or p_port not in comp.ports["outputs"]:
        raise ValueError(f"post must name an output port 'component.port' of the simulator, got {post!r}")
    n_post = int(comp.ports["outputs"][p_port])
    if n_post != conn.weight.shape[0]:
        raise ValueError(f"post port {post!r} has size {n_post}, the weight matrix has {conn.weight.shape[0]} rows")
    if rule.kind == "spike":
        if not math.isclose(rule.dt, sim.dt, rel_tol=1e-9):
            raise ValueError(f"rule.dt ({rule.dt} ms) must equal the simulator's dt ({sim.dt} ms)")
        if every != 1:
            raise ValueError("a spike rule must run every tick (every=1): its traces see every tick")
    hook = SimulatorPlasticity(conn, conn.source[:2], (p_comp, p_port), rule, on_nonfinite)
    sim.attach(hook, every=every)
    return hook


# ------------------------------------------------------------------ ANN layer


def _array(x):
    return x.data if hasattr(x, "data") and hasattr(x, "requires_grad") else x


def step_layer(layer, rule: Rule, x, state=None, *, activation=None):
    r"""One local (no backprop) update of a ``Linear``-like layer's weight: :math:`y = f(x W^T + b)`.

    ``layer`` has ``weight`` ``(out_features, in_features)`` (an ``ann``
    ``Parameter`` or a plain array) and optionally ``bias`` ``(out_features,)``;
    ``x`` is ``(B, in_features)`` (array or tensor). The weight array is updated
    in place with ``rule.step(W, x, y, state)`` (``W`` = ``(n_post, n_pre)``, as
    PyTorch's ``Linear``). Returns ``y`` (an array of the weight's dtype).
    """
    _check_rule(rule)
    if rule.kind != "rate":
        raise TypeError(f"step_layer takes rate rules; {type(rule).__name__} works on spikes")
    W = _array(getattr(layer, "weight", None))
    if W is None or not hasattr(W, "ndim") or W.ndim != 2:
        raise TypeError("layer must have a 2-D weight (out_features, in_features), like ann.nn.Linear")
    xp = array_module(W)
    x = xp.asarray(_array(x), dtype=W.dtype)
    if x.ndim == 1:
        x = x[None, :]
    a = x @ W.T
    bias = getattr(layer, "bias", None)
    if bias is not None:
        a = a + _array(bias)
    y = activation_function(activation)(a)
    rule.step(W, x, y, state)
    return y


# ---------------------------------------------------------------------- ESN


class ESNAdaptation(dict):
    """What :func:`adapt_esn` returns (a dict): ``spectral_radius_before``/``_after``, ``steps``,
    ``ip_state`` (gains and biases, or ``None``), ``rule_state``, ``last_state`` (the final ``(N,)`` state)."""


def _spectral_radius(W) -> float:
    import scipy.sparse
    import scipy.sparse.linalg

    n = W.shape[0]
    if scipy.sparse.issparse(W):
        if n > 64:
            try:
                vals = scipy.sparse.linalg.eigs(W.astype(np.float64), k=1, which="LM", return_eigenvectors=False,
                                                maxiter=10 * n, tol=1e-8, v0=np.ones(n))
                return float(np.abs(vals).max())
            except scipy.sparse.linalg.ArpackNoConvergence:
                pass
        W = W.toarray()
    return float(np.abs(np.linalg.eigvals(np.asarray(asnumpy(W), dtype=np.float64))).max()) if n else 0.0


def _f(esn, z):
    act = esn.activation
    if callable(act):
        return act(z)
    if act == "tanh":
        return np.tanh(z)
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if act == "identity":
        return z
    raise ValueError(f"adapt_esn does not know the ESN activation {act!r}")


def adapt_esn(esn, u, *, rule: Rule | None = None, ip: IntrinsicPlasticity | None = None, weights: str = "W",
              h0=None, epochs: int = 1) -> ESNAdaptation:
    r"""Adapt an echo-state network online over an input sequence ``u`` ``(T, F)``, then leave it frozen.

    The reservoir runs one step at a time with its own update
    :math:`x_t = (1 - a) x_{t-1} + a f(z_t)`, :math:`z_t = W x_{t-1} + W_{in} u_t + b`
    (``esn.W`` ``(N, N)`` dense or scipy CSR, ``esn.W_in`` ``(N, F)``,
    ``esn.bias`` ``(N,)``, ``esn.leak_rate`` :math:`a`, ``esn.activation``
    :math:`f`; no output feedback). After each step:

    * ``rule`` (a local rate rule) changes ``esn.W`` (only its stored
      nonzeros: the sparsity pattern is kept) with ``pre`` :math:`= x_{t-1}`,
      ``post`` :math:`= x_t`, or ``esn.W_in`` (``weights="W_in"``) with
      ``pre`` :math:`= u_t`, ``post`` :math:`= x_t`;
    * ``ip`` (intrinsic plasticity, whose ``activation`` must be the ESN's)
      adapts a gain :math:`g_i` and bias :math:`c_i` per unit on the net
      input: the unit computes :math:`f(g_i z^{(0)}_i + c_i)` where
      :math:`z^{(0)}` is the net input through the weights as they were
      before adaptation, i.e. the rows of ``W``, ``W_in`` are scaled by
      :math:`g_i` and ``bias`` becomes :math:`g_i b^{(0)}_i + c_i`.

    The ESN object is modified in place; afterwards train its readout as
    usual (``esn.fit``). The spectral radius of ``W`` is measured before and
    after; a radius >= 1 after adaptation warns (:class:`~plasticity.PlasticityWarning`).
    """
    import scipy.sparse

    if rule is None and ip is None:
        raise ValueError("adapt_esn needs a rule, an ip (IntrinsicPlasticity), or both")
    if rule is not None:
        _check_rule(rule)
        if rule.kind != "rate":
            raise TypeError(f"adapt_esn takes rate rules; {type(rule).__name__} works on spikes")
        rule.check_synapse_support()
    if ip is not None:
        if not isinstance(ip, IntrinsicPlasticity):
            raise TypeError(f"ip must be an IntrinsicPlasticity, got {type(ip).__name__}")
        if ip.activation != esn.activation:
            raise ValueError(f"ip.activation ({ip.activation!r}) must be the ESN's activation ({esn.activation!r})")
    check_choice(weights, "weights", ("W", "W_in"))
    if getattr(esn, "feedback", False):
        raise ValueError("adapt_esn does not support ESNs with output feedback")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    u = np.asarray(asnumpy(u), dtype=np.float64)
    if u.ndim == 1:
        u = u[:, None]
    if u.ndim != 2:
        raise ValueError(f"u must be a sequence (T, F), got shape {u.shape}")
    if esn.W_in is None:
        esn.initialize(u.shape[1])  # an ESN draws W_in on its first input
    W_in = esn.W_in
    if W_in.shape[1] != u.shape[1]:
        raise ValueError(f"u must have {W_in.shape[1]} features (W_in is {W_in.shape}), got {u.shape[1]}")
    W = esn.W
    sparse = scipy.sparse.issparse(W)
    if sparse:
        W = W.tocsr()
        W.sort_indices()
        rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
        cols = W.indices.astype(np.int64)
    radius_before = _spectral_radius(W)
    a = float(esn.leak_rate)
    N = W.shape[0]
    bias0 = np.asarray(asnumpy(esn.bias), dtype=np.float64).copy()
    if ip is not None:
        ip_state = ip.init_state(N)
        W0 = W.copy()
        W_in0 = np.array(W_in, dtype=np.float64)
    target_shape = (N, N) if weights == "W" else (N, u.shape[1])
    rule_state = rule.init_state(target_shape) if rule is not None else None
    x = np.zeros(N) if h0 is None else np.asarray(h0, dtype=np.float64).reshape(N).copy()
    steps = 0
    for _ in range(epochs):
        for t in range(len(u)):
            z = W @ x + W_in @ u[t] + esn.bias
            x_new = (1 - a) * x + a * _f(esn, z)
            if rule is not None:
                pre = x if weights == "W" else u[t]
                if weights == "W" and sparse:
                    rule.step_synapses(W.data, cols, rows, pre, x_new, rule_state)
                elif weights == "W":
                    rule.step(W, pre, x_new, rule_state)
                else:
                    rule.step(W_in, pre, x_new, rule_state)
                if ip is not None:  # the rule changed the raw weights: keep W0 as their unscaled version
                    g = ip_state["gain"]
                    if weights == "W":
                        if sparse:
                            W0.data[:] = W.data / g[rows]
                        else:
                            W0[...] = W / g[:, None]
                    else:
                        W_in0[...] = W_in / g[:, None]
            if ip is not None:
                g = ip_state["gain"]
                z0 = (z - ip_state["bias"]) / g  # z = g z0 + c: the net input through the unscaled weights
                ip.step(z0, ip_state)
                g = ip_state["gain"]
                if sparse:
                    W.data[:] = W0.data * g[rows]
                else:
                    W[...] = W0 * g[:, None]
                W_in[...] = W_in0 * g[:, None]
                esn.bias[...] = g * bias0 + ip_state["bias"]
            x = x_new
            steps += 1
    if sparse:
        esn.W = W
    radius_after = _spectral_radius(W)
    esn.weights_changed()
    if radius_after >= 1.0:
        warn(f"after adaptation the spectral radius of W is {radius_after:.4g} >= 1: the echo-state property may be lost")
    return ESNAdaptation(spectral_radius_before=radius_before, spectral_radius_after=radius_after, steps=steps,
                         ip_state=ip_state if ip is not None else None, rule_state=rule_state, last_state=x)


# ------------------------------------------------------------------ component


class PlasticSynapses:
    r"""A weight matrix with a rule, as a component of the coupling protocol.

    Ports: input ``"pre"`` ``(B, n_pre)`` (rates, or 0/1 spikes for a spike
    rule), and for a spike rule also input ``"post"`` ``(B, n_post)`` (the
    postsynaptic spikes); output ``"out"`` ``(B, n_post)`` :math:`= f(\mathrm{pre}\, W^T)`
    (rates; for spike rules the synaptic drive :math:`\mathrm{pre}\, W^T`).
    Each ``step`` computes the output and, when ``learn`` is true, applies the
    rule (a rate rule with ``post = out``; a spike rule with the ``"post"``
    input, which with a spiking neuron downstream is typically that neuron's
    spikes of the previous tick). ``W`` ``(n_post, n_pre)`` is updated in place.
    Diverging weights raise ``FloatingPointError`` naming the rule and the step
    (``on_nonfinite="warn"``: one warning instead).
    """

    def __init__(self, W, rule: Rule, *, activation=None, learn: bool = True, every: int = 1,
                 on_nonfinite: str = "raise"):
        self.rule = _check_rule(rule)
        self.watch = DivergenceWatch(rule, on_nonfinite)
        if not hasattr(W, "ndim") or W.ndim != 2 or W.dtype.kind != "f":
            raise ValueError(f"W must be a 2-D floating array (n_post, n_pre), got {getattr(W, 'shape', W)!r}")
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every must be a positive int (steps), got {every!r}")
        if rule.kind == "spike" and every != 1:
            raise ValueError("a spike rule must run every step (every=1): its traces see every tick")
        self.W = W
        self.f = activation_function(activation)
        self.learn = bool(learn)
        self.every = int(every)
        self.state = None
        self.batch_size = None
        self._n = 0

    @property
    def dt(self):
        """The rule's tick (ms) when it has one (a ``Simulator`` checks it against its own), else ``None``."""
        return getattr(self.rule, "dt", None)

    @property
    def ports(self) -> dict[str, dict[str, int]]:
        n_post, n_pre = self.W.shape
        inputs = {"pre": n_pre}
        if self.rule.kind == "spike":
            inputs["post"] = n_post
        return {"inputs": inputs, "outputs": {"out": n_post}}

    def reset(self, batch_size: int = 1, seed=None) -> "PlasticSynapses":
        """Fresh rule state for ``batch_size`` trials (deterministic; ``seed`` is accepted for the protocol)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        make_rng(seed)  # validates the seed; the component draws no random numbers
        self.batch_size = int(batch_size)
        self.state = self.rule.init_state(self.W.shape, batch_size=self.batch_size, like=self.W)
        self._n = 0
        return self

    def step(self, t=None, inputs=None) -> dict:
        """Advance one tick: returns ``{"out": (B, n_post)}``."""
        if self.batch_size is None:
            self.reset(1)
        inputs = inputs or {}
        if "pre" not in inputs:
            raise ValueError(f"missing input port 'pre'; ports: {self.ports['inputs']}")
        xp = array_module(self.W)
        pre = xp.asarray(inputs["pre"], dtype=self.W.dtype)
        if pre.ndim == 1:
            pre = xp.broadcast_to(pre, (self.batch_size, pre.shape[0]))
        drive = pre @ self.W.T
        out = drive if self.rule.kind == "spike" else self.f(drive)
        self._n += 1
        if self.learn and self._n % self.every == 0:
            if self.rule.kind == "spike":
                if "post" not in inputs:
                    raise ValueError("a spike rule needs the input port 'post' (postsynaptic spikes)")
                self.rule.step(self.W, pre, inputs["post"], self.state)
            else:
                self.rule.step(self.W, pre, out, self.state)
            self.watch(self.W, self._n)
        return {"out": out}
