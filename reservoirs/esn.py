"""Echo-state networks: a fixed random leaky reservoir and a trained linear readout.

The state update is ReservoirPy 0.4's (``Reservoir._step``)::

    x[t] = (1 - a) x[t-1] + a f(W x[t-1] + W_in u[t] + bias)       x[-1] = h0 (zeros)

with leak rate ``a`` in (0, 1]. With ``feedback=True`` the readout's
previous output ``y[t-1]`` enters as well, through ``W_fb`` (ReservoirPy
concatenates it to the input; ``W_fb`` is that part of its ``Win``), with
``y[-1] = 0``: teacher-forced while fitting, the ESN's own predictions when
predicting.

Shapes: a sequence is ``(T, F)``, a batch ``(B, T, F)``, a list of
``(T_i, F)`` arrays is run sequence by sequence; states are ``(..., T, N)``
and outputs ``(..., T, O)``. Weights are ``(n_post, n_pre)``: ``W`` ``(N, N)``,
``W_in`` ``(N, F)``, ``W_fb`` ``(N, O)``.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import scipy.sparse

from neuro.backend import array_module, asnumpy, make_rng, resolve_dtype
from neuro.kernels import call

from .estimator import Estimator
from .checks import UnstableReservoirWarning
from neuro.validation import as_float_array, check_fraction, check_int, check_positive
from .readouts import RLS, Ridge
from .recurrence import ACTIVATIONS, FUSED_INPUTS, _apply
from .weights import bernoulli_matrix, random_sparse, spectral_radius as _spectral_radius

__all__ = ["ESN"]

#: Elements of the feedback drive W_fb y computed per chunk (bounds its temporary: 2 MiB in float64).
_CHUNK_ELEMENTS = 1 << 18


def _check_leak(leak_rate: Any) -> float:
    if isinstance(leak_rate, bool) or not isinstance(leak_rate, (int, float, np.floating, np.integer)):
        raise TypeError(f"leak_rate must be a real number in (0, 1], got {type(leak_rate).__name__}")
    leak_rate = float(leak_rate)
    if not (0.0 < leak_rate <= 1.0):
        raise ValueError(f"leak_rate must be in (0, 1], got {leak_rate}")
    return leak_rate


def _leak_from_tau(leak_rate: Any, tau: Any, dt: Any) -> Any:
    """The leak rate: ``leak_rate``, or ``dt / tau`` from a time constant (ms); 1 when neither is given."""
    if dt is not None:
        dt = check_positive(dt, "dt")
    if tau is None:
        return 1.0 if leak_rate is None else leak_rate
    if leak_rate is not None:
        raise ValueError("give either leak_rate or tau (with dt), not both")
    if dt is None:
        raise ValueError("tau needs dt, the tick in ms (leak_rate = dt / tau)")
    tau = check_positive(tau, "tau")
    if dt > tau:
        raise ValueError(f"dt={dt} ms is larger than tau={tau} ms: the leak rate dt / tau would exceed 1")
    return dt / tau


def _check_activation(activation: Any) -> str | Callable:
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return activation
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}")


def _warn_radius(radius: float, what: str) -> None:
    if radius >= 1.0:
        warnings.warn(
            f"{what} is {radius:.4g} >= 1: the reservoir may lose the echo-state property "
            "(its state may depend on the initial condition or blow up)",
            UnstableReservoirWarning,
            stacklevel=3,
        )


def _warn_diverged(esn: "ESN", states: list) -> None:
    """Warn when states of an unbounded activation overflowed to inf/NaN (tanh and sigmoid cannot)."""
    if esn.activation in ("tanh", "sigmoid") or all(bool(array_module(s).isfinite(s).all()) for s in states):
        return
    radius = "" if esn.spectral_radius is None else f" spectral_radius={esn.spectral_radius:.4g},"
    warnings.warn(
        f"ESN.run: the reservoir states diverged to inf/NaN (activation={esn.activation!r},{radius} "
        f"leak_rate={esn.leak_rate}): lower the spectral radius of W below 1 or use a bounded activation",
        UnstableReservoirWarning,
        stacklevel=3,
    )


class ESN(Estimator):
    """An echo-state network with a sparse random reservoir and a ridge readout.

    Parameters
    ----------
    units : int, number of reservoir units ``N``.
    spectral_radius : float > 0, spectral radius ``W`` is rescaled to (warns if >= 1).
    leak_rate : float in (0, 1], ``a`` in the update; None (default): 1, or ``dt / tau`` when ``tau`` is given.
    tau : float, ms, optional; a time constant instead of a leak rate: ``leak_rate = dt / tau`` (the
        Euler step of ``tau dx/dt = -x + f(...)``), so the reservoir's memory in ms does not depend on
        the :class:`neuro.Simulator` tick. Needs ``dt`` <= ``tau``.
    dt : float, ms, optional; the tick (with ``tau``). An ESN with ``dt`` checks it against the Simulator's.
    input_scaling : float or ``(F,)`` array, magnitude of the nonzero ``W_in`` entries (+-, equal odds).
    connectivity : float in (0, 1], fraction of nonzero entries of ``W`` (values N(0, 1) before rescaling).
    input_connectivity : float in (0, 1], fraction of nonzero entries of ``W_in`` (and ``W_fb``):
        exactly ``round(input_connectivity * N * F)`` of them, as ReservoirPy.
    connect_every_unit : bool, give every unit at least one nonzero ``W_in`` (``W_fb``) entry, so no
        unit is cut off from the input (denser than ``input_connectivity`` for narrow inputs; the
        behaviour of this ESN before version 0.2). False (default): ReservoirPy's density.
    bias_scaling : float >= 0, magnitude of the +- bias entries (0: no bias).
    activation : ``"tanh"``, ``"identity"``, ``"sigmoid"`` or an elementwise callable.
    feedback : bool, feed the readout's previous output back into the reservoir.
    feedback_scaling : float, magnitude of the ``W_fb`` entries.
    ridge : float >= 0, penalty of the :class:`~reservoirs.Ridge` readout.
    seed : int or ``numpy.random.Generator``; ``W`` and the bias are drawn at construction,
        ``W_in`` (``W_fb``) at the first call that shows the input (output) width.
    dtype : floating dtype of the weights and states (float64 by default).
    input_dim : int, optional; draws ``W_in`` now instead of at the first call (needed for :attr:`ports`).
    threads : int or None, CPU threads of :meth:`run` (the states are the same whatever the count): a
        batch's lane blocks (eight sequences each) are shared by the threads; a single sequence shares
        each step's rows. None (default): one for a single sequence; for a batch with enough work per
        step, one per lane block up to numba's thread count (see :func:`reservoirs.recurrence.resolve_threads`).

    Notes
    -----
    An ESN follows scikit-learn's estimator protocol (``get_params``, ``set_params``, ``score`` =
    R^2 of :meth:`predict`, ``sklearn.base.clone``); ``set_params`` rebuilds the reservoir from the
    new arguments (with an int ``seed``, the same arguments give the same weights).

    Besides standalone use, an ESN is a component of :class:`neuro.Simulator`
    (``reset``/``step``/``ports``: input port ``"u"`` ``(B, F)``, output ports
    ``"x"`` ``(B, N)`` and, once fitted, ``"y"`` ``(B, O)``; one tick is one update).
    """

    def __init__(
        self,
        units: int,
        *,
        spectral_radius: float = 0.9,
        leak_rate: float | None = None,
        input_scaling: Any = 1.0,
        connectivity: float = 0.1,
        input_connectivity: float = 0.1,
        bias_scaling: float = 0.0,
        activation: str | Callable = "tanh",
        feedback: bool = False,
        feedback_scaling: float = 1.0,
        ridge: float = 1e-6,
        seed: Any = None,
        dtype: Any = None,
        input_dim: int | None = None,
        threads: int | None = None,
        connect_every_unit: bool = False,
        tau: float | None = None,
        dt: float | None = None,
    ):
        self._params = {name: value for name, value in locals().items() if name not in ("self", "__class__")}
        leak_rate = _leak_from_tau(leak_rate, tau, dt)
        units = check_int(units, "units")
        radius = check_positive(spectral_radius, "spectral_radius")
        _warn_radius(radius, "spectral_radius")
        dtype = resolve_dtype(dtype)
        rng = make_rng(seed)
        w_rng, in_rng, bias_rng, fb_rng = rng.spawn(4)
        W = random_sparse(units, connectivity=connectivity, spectral_radius=radius, seed=w_rng, dtype=dtype)
        bias_scaling = check_positive(bias_scaling, "bias_scaling", allow_zero=True)
        bias = bernoulli_matrix((units,), scaling=bias_scaling, seed=bias_rng, dtype=dtype)
        self._setup(W, None, bias, None, leak_rate, activation, ridge, dtype, threads)
        self.tau, self.dt = tau, dt
        self.feedback = bool(feedback)
        scaling = np.asarray(input_scaling, dtype=np.float64)
        if scaling.ndim > 1 or not np.all(np.isfinite(scaling)):
            raise ValueError(f"input_scaling must be a finite float or a 1-D array (one per feature), got {input_scaling!r}")
        self.input_scaling = scaling
        self.input_connectivity = check_fraction(input_connectivity, "input_connectivity")
        if not isinstance(connect_every_unit, (bool, np.bool_)):
            raise TypeError(f"connect_every_unit must be a bool, got {type(connect_every_unit).__name__}")
        self.connect_every_unit = bool(connect_every_unit)
        self.feedback_scaling = check_positive(feedback_scaling, "feedback_scaling")
        self.spectral_radius = radius
        self._in_rng, self._fb_rng = in_rng, fb_rng
        if input_dim is not None:
            self.initialize(check_int(input_dim, "input_dim"))

    @classmethod
    def from_weights(
        cls,
        W: Any,
        W_in: Any,
        bias: Any = None,
        *,
        leak_rate: float | None = None,
        activation: str | Callable = "tanh",
        ridge: float = 1e-6,
        W_fb: Any = None,
        dtype: Any = None,
        threads: int | None = None,
        tau: float | None = None,
        dt: float | None = None,
    ) -> "ESN":
        """An ESN with user-supplied matrices.

        ``W`` ``(N, N)`` dense or scipy.sparse; ``W_in`` ``(N, F)``; ``bias``
        ``(N,)`` (or a scalar; default 0); ``W_fb`` ``(N, O)`` turns feedback on.
        Warns (:class:`UnstableReservoirWarning`) if ``W``'s spectral radius is >= 1.
        ``leak_rate``, ``tau`` and ``dt`` as in the constructor.
        """
        leak_rate = _leak_from_tau(leak_rate, tau, dt)
        dtype = resolve_dtype(dtype)
        if scipy.sparse.issparse(W):
            W = scipy.sparse.csr_matrix(W, dtype=dtype)
        else:
            W = np.asarray(asnumpy(W))
            if W.dtype.kind not in "biuf":
                raise TypeError(f"W must be a real matrix, got dtype {W.dtype}")
            W = scipy.sparse.csr_matrix(W.astype(dtype))
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be a square (N, N) matrix, got shape {W.shape}")
        n = W.shape[0]
        if not np.all(np.isfinite(W.data)):
            raise ValueError("W contains NaN or infinite values")
        W_in = as_float_array(asnumpy(W_in), "W_in", dtype, ndims=(2,))
        if W_in.shape[0] != n:
            raise ValueError(f"W_in must have shape (N, F) with N = {n}, got {W_in.shape}")
        if bias is None:
            bias = np.zeros(n, dtype=dtype)
        else:
            bias = np.broadcast_to(as_float_array(asnumpy(bias), "bias", dtype, ndims=(0, 1)), (n,)).copy()
        if W_fb is not None:
            W_fb = as_float_array(asnumpy(W_fb), "W_fb", dtype, ndims=(2,))
            if W_fb.shape[0] != n:
                raise ValueError(f"W_fb must have shape (N, O) with N = {n}, got {W_fb.shape}")
        _warn_radius(_spectral_radius(W) if n else 0.0, "the spectral radius of W")
        self = cls.__new__(cls)
        self._params = None
        self._setup(W, W_in, bias, W_fb, leak_rate, activation, ridge, dtype, threads)
        self.tau, self.dt = tau, dt
        self.feedback = W_fb is not None
        self.input_scaling = None
        self.spectral_radius = None
        return self

    def _setup(self, W, W_in, bias, W_fb, leak_rate, activation, ridge, dtype, threads):
        self.threads = None if threads is None else check_int(threads, "threads")
        W.sort_indices()
        self.W = W
        self.W_in = W_in
        self.bias = bias
        self.W_fb = W_fb
        self.units = W.shape[0]
        self.leak_rate = _check_leak(leak_rate)
        self.activation = _check_activation(activation)
        self.ridge = check_positive(ridge, "ridge", allow_zero=True)
        self.readout = Ridge(self.ridge)
        self.dtype = dtype
        self._device_cache: dict = {}

    # ------------------------------------------------------------ scikit-learn protocol

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments as given (``TypeError`` for an ESN made by :meth:`from_weights`)."""
        if self._params is None:
            raise TypeError("an ESN made by ESN.from_weights has no constructor arguments; copy it with copy.deepcopy")
        return dict(self._params)

    def set_params(self, **params: Any) -> "ESN":
        """Change constructor arguments and rebuild the reservoir from them (the fitted readout is dropped)."""
        merged = self.get_params()
        for name in params:
            if name not in merged:
                raise ValueError(f"invalid parameter {name!r} for ESN; valid parameters: {', '.join(sorted(merged))}")
        merged.update(params)
        self.__dict__ = type(self)(**merged).__dict__  # built whole first: a bad value leaves self as it was
        return self

    def __repr__(self) -> str:
        if self._params is None:
            width = "?" if self.W_in is None else self.W_in.shape[1]
            return f"ESN.from_weights(units={self.units}, inputs={width}, leak_rate={self.leak_rate})"
        return super().__repr__()

    # ------------------------------------------------------------ helpers

    def _f(self, xp, z):
        return self.activation(z) if callable(self.activation) else _apply(xp, self.activation, z)

    def initialize(self, n_features: int) -> ESN:
        """Draw ``W_in`` ``(units, n_features)`` now if it is not drawn yet (``run`` and ``fit`` do it on first use).

        ``ValueError`` if ``W_in`` exists with another width. Returns ``self``.
        """
        n_features = check_int(n_features, "n_features")
        if self.W_in is None:
            scaling = self.input_scaling
            if scaling.ndim == 1 and scaling.shape[0] != n_features:
                raise ValueError(f"input_scaling has {scaling.shape[0]} entries but u has {n_features} features")
            self.W_in = bernoulli_matrix(
                (self.units, n_features), scaling=scaling, connectivity=self.input_connectivity,
                every_row=self.connect_every_unit, seed=self._in_rng, dtype=self.dtype,
            )
        elif self.W_in.shape[1] != n_features:
            raise ValueError(f"u has {n_features} features but this ESN's W_in expects {self.W_in.shape[1]}")
        return self

    def weights_changed(self) -> None:
        """Tell the ESN that ``W``, ``W_in``, ``W_fb`` or ``bias`` were changed in place (drops cached GPU copies)."""
        self._device_cache.clear()

    def _ensure_feedback(self, n_outputs: int) -> None:
        if self.W_fb is None:
            if not hasattr(self, "_fb_rng"):
                raise ValueError("this ESN was built without feedback weights W_fb")
            self.W_fb = bernoulli_matrix(
                (self.units, n_outputs), scaling=self.feedback_scaling, connectivity=self.input_connectivity,
                every_row=self.connect_every_unit, seed=self._fb_rng, dtype=self.dtype,
            )
        elif self.W_fb.shape[1] != n_outputs:
            raise ValueError(f"y has {n_outputs} outputs but this ESN's W_fb expects {self.W_fb.shape[1]}")

    def _on(self, xp, name: str):
        """Weight ``name`` as an array of module ``xp`` (cached on the device)."""
        value = getattr(self, name)
        if xp is np or value is None:
            return value
        return self._cached(name, value, xp.asarray)

    def _cached(self, name: str, host: Any, to_device: Callable):
        """The device copy of ``host`` (the current value of attribute ``name``), made once.

        The cache keeps the host object it copied and compares identity, so a
        weight reassigned to a new array is copied again (an ``id()`` key could
        be reused by a new array once the old one is freed). In-place changes
        need :meth:`weights_changed`.
        """
        hit = self._device_cache.get(name)
        if hit is None or hit[0] is not host:
            hit = self._device_cache[name] = (host, to_device(host))
        return hit[1]

    def _split(self, u: Any, name: str = "u"):
        """``(list of (B, T, F) arrays, kind)`` with kind ``"single"``, ``"batch"`` or ``"list"``."""
        if isinstance(u, (list, tuple)) and len(u) and getattr(u[0], "ndim", np.ndim(u[0])) == 2:
            return [as_float_array(s, f"{name}[{i}]", self.dtype, ndims=(2,))[None] for i, s in enumerate(u)], "list"
        arr = as_float_array(u, name, self.dtype, ndims=(1, 2, 3))
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim == 2:
            return [arr[None]], "single"
        return [arr], "batch"

    @staticmethod
    def _join(parts: list, kind: str):
        if kind == "single":
            return parts[0][0]
        if kind == "batch":
            return parts[0]
        return [p[0] for p in parts]

    def _initial(self, xp, h0: Any, batch: int):
        if h0 is None:
            return xp.zeros((batch, self.units), dtype=self.dtype)
        h0 = xp.asarray(as_float_array(h0, "h0", self.dtype, ndims=(1, 2)))
        if h0.shape[-1] != self.units or (h0.ndim == 2 and h0.shape[0] not in (1, batch)):
            raise ValueError(f"h0 must have shape (N,) or (B, N) with N = {self.units}, B = {batch}, got {h0.shape}")
        return xp.ascontiguousarray(xp.broadcast_to(h0, (batch, self.units)))

    @staticmethod
    def _shifted(y3):
        """Feedback signal ``y[t-1]`` (zeros at ``t = 0``) for targets ``(B, T, O)``."""
        xp = array_module(y3)
        fb = xp.zeros_like(y3)
        fb[:, 1:] = y3[:, :-1]
        return fb

    def _states(self, u3, x0, fb3=None, out=None):
        """States ``(B, T, N)`` (in ``out`` if given) for inputs ``(B, T, F)``, initial states ``(B, N)``, feedback ``(B, T, O)``."""
        xp = array_module(u3)
        B, T, _ = u3.shape
        self.initialize(u3.shape[2])
        W_in, bias, W_fb = self._on(xp, "W_in"), self._on(xp, "bias"), self._on(xp, "W_fb")
        W = self.W
        indptr, indices, data = (xp.asarray(a) for a in (W.indptr, W.indices, W.data))
        impl = "reference" if callable(self.activation) else None
        if out is None:
            out = xp.empty((B, T, self.units), dtype=self.dtype)
        if out.size == 0:  # no steps (or no units): nothing to run
            return out
        if xp.may_share_memory(x0, out):
            x0 = x0.copy()  # e.g. h0=out[-1] to continue a run in the same buffer: read it before the drive overwrites it
        kwargs = dict(leak=self.leak_rate, activation=self.activation, impl=impl, out=out, threads=self.threads,
                      bias=bias)
        if fb3 is None and u3.shape[2] <= FUSED_INPUTS:
            # few inputs: the kernel computes each unit's drive W_in u + bias as it needs it (no drive array)
            return call("esn_recurrence", indptr, indices, data, u3, x0, W_in=W_in, **kwargs)
        # The input drive W_in u (+ W_fb y[t-1]) is written into out, which the kernel then overwrites
        # with the states step by step: no drive buffer, and one kernel call (threads meet once per run).
        xp.matmul(u3, W_in.T, out=out)
        if fb3 is not None:
            chunk = max(1, _CHUNK_ELEMENTS // max(1, B * self.units))
            for t0 in range(0, T, chunk):
                out[:, t0:t0 + chunk] += fb3[:, t0:t0 + chunk] @ W_fb.T
        return call("esn_recurrence", indptr, indices, data, out, x0, **kwargs)

    def _step_once(self, xp, x, inp, fb):
        """One update of states ``x`` ``(B, N)`` with input ``(B, F)`` and feedback ``(B, O)`` or None."""
        W = self.W if xp is np else self._device_W(xp)
        pre = (W @ x.T).T + inp @ self._on(xp, "W_in").T + self._on(xp, "bias")
        if fb is not None:
            pre = pre + fb @ self._on(xp, "W_fb").T
        return (1.0 - self.leak_rate) * x + self.leak_rate * self._f(xp, pre)

    def _device_W(self, xp):
        import cupyx.scipy.sparse

        return self._cached("W", self.W, cupyx.scipy.sparse.csr_matrix)

    def _readout_step(self, xp, x):
        r = self.readout
        return x @ xp.asarray(r.coef_.T, dtype=self.dtype) + xp.asarray(r.intercept_, dtype=self.dtype)

    def _closed_loop(self, x, n_steps: int, u3=None, y_prev=None):
        """Run ``n_steps`` feeding the readout back (as input if ``u3`` is None, as feedback if enabled).

        Returns states ``(B, n, N)`` and outputs ``(B, n, O)``.
        """
        xp = array_module(x, u3)
        self._check_fitted()
        B = x.shape[0]
        n_out = self.readout.coef_.shape[0]
        if y_prev is None:
            y_prev = xp.zeros((B, n_out), dtype=self.dtype)
        states = xp.empty((B, n_steps, self.units), dtype=self.dtype)
        outs = xp.empty((B, n_steps, n_out), dtype=self.dtype)
        for t in range(n_steps):
            inp = y_prev if u3 is None else u3[:, t]
            x = self._step_once(xp, x, inp, y_prev if self.feedback else None)
            y_prev = self._readout_step(xp, x)
            states[:, t] = x
            outs[:, t] = y_prev
        return states, outs

    def _check_fitted(self):
        if self.readout.coef_ is None and not getattr(self.readout, "_stale", False):
            raise RuntimeError("this ESN's readout is not fitted yet; call fit first")
        self.readout._check_fitted()

    def _outputs(self, parts, flat: bool):
        if flat:
            return [p[..., 0] for p in parts]
        return parts

    # ------------------------------------------------------------ coupling protocol

    @property
    def ports(self) -> dict:
        """``{"inputs": {"u": F}, "outputs": {"x": N[, "y": O]}}`` (needs ``W_in``: pass ``input_dim`` or run once)."""
        if self.W_in is None:
            raise RuntimeError("the ESN's input width is unknown: build it with input_dim=F or run/fit it once")
        outputs = {"x": self.units}
        if self.is_fitted:
            outputs["y"] = self.readout.coef_.shape[0]
        return {"inputs": {"u": self.W_in.shape[1]}, "outputs": outputs}

    def reset(self, batch_size: int, seed: Any = None) -> None:
        """Zero state for ``batch_size`` trials (the ESN is deterministic; ``seed`` is accepted and unused)."""
        self._x = np.zeros((check_int(batch_size, "batch_size"), self.units), dtype=self.dtype)
        self._y = None

    def step(self, t: Any, inputs: dict) -> dict:
        """One update with ``inputs["u"]`` ``(B, F)`` (zeros if absent); returns ``{"x": (B, N)[, "y": (B, O)]}``."""
        if getattr(self, "_x", None) is None:
            raise RuntimeError("call reset(batch_size) before step")
        width = self.ports["inputs"]["u"]
        u = inputs.get("u")
        u = np.zeros((self._x.shape[0], width), self.dtype) if u is None else as_float_array(u, "u", self.dtype, ndims=(2,))
        if u.shape != (self._x.shape[0], width):
            raise ValueError(f"input u must have shape {(self._x.shape[0], width)}, got {u.shape}")
        fb = None
        if self.feedback:
            n_out = self.W_fb.shape[1] if self.W_fb is not None else 0
            fb = self._y if self._y is not None else np.zeros((self._x.shape[0], n_out), self.dtype)
        self._x = self._step_once(np, self._x, u, fb)
        out = {"x": self._x.copy()}
        if self.is_fitted:
            self._y = self._readout_step(np, self._x)
            out["y"] = self._y
        return out

    # ------------------------------------------------------------ public API

    @property
    def is_fitted(self) -> bool:
        return self.readout.coef_ is not None

    def run(self, u: Any, h0: Any = None, *, y_feedback: Any = None, out: Any = None):
        """Reservoir states for input ``u``.

        ``u``: ``(T, F)`` -> ``(T, N)``; ``(B, T, F)`` -> ``(B, T, N)``; a list of
        ``(T_i, F)`` -> a list of ``(T_i, N)``. ``h0`` ``(N,)`` or ``(B, N)``:
        the state before the first step (zeros by default). With feedback,
        ``y_feedback`` (shaped like the targets) is teacher-forced as
        ``y[t-1]``; without it a fitted ESN feeds back its own predictions.
        ``out``: a C-contiguous array of the result's shape and the ESN's dtype
        (on the input's device) that receives the states and is returned, as
        NumPy's ``out=``; repeated runs then reuse its memory instead of
        faulting in fresh pages (for one array ``u`` only, not a list).
        """
        parts, kind = self._split(u)
        given = out
        if out is not None:
            out = self._check_out(out, parts, kind)
        if self.feedback and y_feedback is None and not self.is_fitted:
            raise ValueError("an ESN with feedback needs y_feedback (teacher signal) or a fitted readout to run")
        fbs = [None] * len(parts)
        if self.feedback and y_feedback is not None:
            fbs, _ = self._targets(y_feedback, parts, kind)
        results = []
        for u3, fb in zip(parts, fbs):
            xp = array_module(u3)
            x0 = self._initial(xp, h0, u3.shape[0])
            if self.feedback and fb is None:
                states, _ = self._closed_loop(x0, u3.shape[1], u3)
                if out is not None:
                    out[...] = states
                    states = out
            else:
                self.initialize(u3.shape[2])
                if fb is not None:
                    self._ensure_feedback(fb.shape[2])
                    fb = self._shifted(fb)
                states = self._states(u3, x0, fb, out)
            results.append(states)
        _warn_diverged(self, results)
        return given if given is not None else self._join(results, kind)

    def _check_out(self, out: Any, parts: list, kind: str):
        """``out`` of :meth:`run` as a ``(B, T, N)`` view, after checking its type, shape, dtype and layout."""
        if kind == "list":
            raise ValueError("out is supported for one array u, not for a list of sequences")
        xp = array_module(parts[0])
        if not isinstance(out, xp.ndarray):
            raise TypeError(f"out must be a {xp.__name__}.ndarray like u, got {type(out).__name__}")
        B, T, _ = parts[0].shape
        shape = (T, self.units) if kind == "single" else (B, T, self.units)
        if out.shape != shape:
            raise ValueError(f"out must have shape {shape} (the states of u), got {out.shape}")
        if out.dtype != self.dtype:
            raise TypeError(f"out must have the ESN's dtype {self.dtype}, got {out.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if xp.may_share_memory(out, parts[0]):
            raise ValueError("out must not overlap u")
        return out.reshape((B, T, self.units))

    def _targets(self, y: Any, parts: list, kind: str):
        """Targets split like the inputs ``parts``: list of ``(B, T, O)``; the bool says they were 1-D per step."""
        if kind == "list":
            if not isinstance(y, (list, tuple)) or len(y) != len(parts):
                raise ValueError(f"y must be a list of {len(parts)} target sequences, like u")
            ys = [as_float_array(s, f"y[{i}]", self.dtype, ndims=(1, 2)) for i, s in enumerate(y)]
            flat = ys[0].ndim == 1
            ys = [(s[:, None] if s.ndim == 1 else s)[None] for s in ys]
        else:
            arr = as_float_array(y, "y", self.dtype, ndims=(1, 2, 3))
            flat = arr.ndim == 1 or (kind == "batch" and arr.ndim == 2)
            if flat:
                arr = arr[..., None]
            if kind == "single":
                if arr.ndim != 2:
                    raise ValueError(f"y must have shape (T, O) or (T,) for u of shape (T, F), got {arr.shape}")
                arr = arr[None]
            elif arr.ndim != 3:
                raise ValueError(f"y must have shape (B, T, O) for u of shape (B, T, F), got {arr.shape}")
            ys = [arr]
        for i, (u3, y3) in enumerate(zip(parts, ys)):
            if y3.shape[:2] != u3.shape[:2]:
                raise ValueError(f"y and u must have the same (batch, time) lengths, got {y3.shape[:2]} and {u3.shape[:2]} (sequence {i})")
        return ys, flat

    def fit(self, u: Any, y: Any, warmup: int = 0, h0: Any = None) -> "ESN":
        """Train the ridge readout to map the states for ``u`` onto ``y``.

        ``u`` ``(T, F)`` / ``(B, T, F)`` / list of ``(T_i, F)``; ``y`` the same
        with ``O`` outputs (or no last axis for one output). The first
        ``warmup`` steps of every sequence are run but not fitted. X^T X is
        accumulated sequence by sequence (see :class:`~reservoirs.Ridge`).
        """
        warmup = check_int(warmup, "warmup", minimum=0)
        parts, kind = self._split(u)
        ys, flat = self._targets(y, parts, kind)
        shortest = min(u3.shape[1] for u3 in parts)
        if warmup >= shortest:
            raise ValueError(f"warmup ({warmup}) must be shorter than every sequence (shortest: {shortest} steps)")
        readout = Ridge(self.ridge)
        for u3, y3 in zip(parts, ys):
            fb = None
            if self.feedback:
                self._ensure_feedback(y3.shape[2])
                fb = self._shifted(y3)
            self.initialize(u3.shape[2])
            states = self._states(u3, self._initial(array_module(u3), h0, u3.shape[0]), fb)
            readout.accumulate(asnumpy(states[:, warmup:]), asnumpy(y3[:, warmup:]))
        readout.solve()
        readout._flat = flat
        self.readout = readout  # replaced only once the fit succeeded
        return self

    def predict(self, u: Any, h0: Any = None):
        """Readout outputs for input ``u`` (shapes as :meth:`run`, last axis ``O``).

        With feedback, the ESN's own previous prediction is fed back (closed loop).
        """
        self._check_fitted()
        parts, kind = self._split(u)
        outs = []
        for u3 in parts:
            xp = array_module(u3)
            x0 = self._initial(xp, h0, u3.shape[0])
            if self.feedback:
                self.initialize(u3.shape[2])
                _, y3 = self._closed_loop(x0, u3.shape[1], u3)
            else:
                y3 = self._readout_step(xp, self._states(u3, x0))
            outs.append(y3)
        return self._join(self._outputs(outs, self.readout._flat), kind)

    def generate(self, n_steps: int, context: Any, h0: Any = None):
        """Closed-loop forecast: run on ``context``, then feed each prediction back as the next input.

        For an ESN trained to predict the next input (``y[t] = u[t+1]``, so
        ``O == F``). ``context`` ``(T, F)`` or ``(B, T, F)``; returns the
        ``n_steps`` forecasts after it, ``(n_steps, F)`` or ``(B, n_steps, F)``:
        the first is the readout of the last context state.
        """
        n_steps = check_int(n_steps, "n_steps")
        self._check_fitted()
        parts, kind = self._split(context, "context")
        if kind == "list":
            raise ValueError("context must be one array (T, F) or (B, T, F), not a list")
        u3 = parts[0]
        if self.readout.coef_.shape[0] != u3.shape[2]:
            raise ValueError(
                f"generate needs a readout with as many outputs as inputs; it has {self.readout.coef_.shape[0]} "
                f"outputs for {u3.shape[2]} input features"
            )
        xp = array_module(u3)
        x0 = self._initial(xp, h0, u3.shape[0])
        if self.feedback:
            states, ys = self._closed_loop(x0, u3.shape[1], u3)
        else:
            states = self._states(u3, x0)
            ys = self._readout_step(xp, states[:, -1:])
        first = ys[:, -1]
        out = xp.empty((u3.shape[0], n_steps, u3.shape[2]), dtype=self.dtype)
        out[:, 0] = first
        if n_steps > 1:
            _, rest = self._closed_loop(states[:, -1], n_steps - 1, None, y_prev=first)
            out[:, 1:] = rest
        return out[0] if kind == "single" else out

    def fit_online(self, u: Any, y: Any, *, readout: RLS | None = None, warmup: int = 0, h0: Any = None):
        """Train an online readout (default ``RLS(alpha=1.0)``) sample by sample; returns its outputs during training.

        Without feedback this is recursive least squares on the states. With
        feedback it is FORCE learning (Sussillo & Abbott 2009): at every step
        the output ``z[t] = w x[t]`` is fed back (not the teacher), then ``w``
        is updated towards ``y[t]``. During the first ``warmup`` steps the
        teacher is fed back and nothing is learned. ``u`` ``(T, F)``, ``y``
        ``(T, O)`` or ``(T,)``; returns ``(T, O)`` (or ``(T,)``) outputs ``z``.
        The trained readout replaces :attr:`readout`; the final state is kept in
        ``last_state_`` ``(N,)`` (pass it as ``h0`` to continue).
        """
        warmup = check_int(warmup, "warmup", minimum=0)
        readout = RLS(1.0) if readout is None else readout
        if not isinstance(readout, RLS):
            raise TypeError(f"readout must be an RLS instance, got {type(readout).__name__}")
        parts, kind = self._split(u)
        if kind != "single":
            raise ValueError("fit_online takes one sequence u of shape (T, F)")
        ys, flat = self._targets(y, parts, kind)
        u3, y3 = parts[0], ys[0]
        xp = array_module(u3)
        if xp is not np:
            raise TypeError("fit_online runs on NumPy arrays only")
        x = self._initial(xp, h0, 1)
        self.initialize(u3.shape[2])
        T, n_out = u3.shape[1], y3.shape[2]
        if readout.coef_ is None:
            readout.initialize(self.units, n_out)
        readout._flat = flat
        z_all = np.empty((T, n_out), dtype=self.dtype)
        if not self.feedback:
            states = self._states(u3, x)[0]
            x = states[-1:]
            z_all[:warmup] = readout.predict(states[:warmup]).reshape(-1, n_out) if warmup else z_all[:0]
            if warmup < T:
                z_all[warmup:] = readout.partial_fit(states[warmup:], y3[0, warmup:]).reshape(-1, n_out)
        else:
            self._ensure_feedback(n_out)
            z = np.zeros((1, n_out), dtype=self.dtype)
            for t in range(T):
                fb = (y3[:, t - 1] if t > 0 else np.zeros_like(z)) if t < warmup else z
                x = self._step_once(np, x, u3[:, t], fb)
                if t < warmup:
                    z = x @ readout.coef_.T + readout.intercept_
                else:
                    z = readout.update(x[0], y3[0, t])[None]
                z_all[t] = z[0]
        self.readout = readout
        self.last_state_ = x[0].copy()
        return z_all[:, 0] if flat else z_all
