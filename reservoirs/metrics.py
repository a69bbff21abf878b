"""Scores and reservoir diagnostics.

* errors: :func:`nrmse`, :func:`rsquare`;
* memory: :func:`memory_capacity` (Jaeger 2001);
* computational power (Legenstein & Maass 2007): :func:`separation`,
  :func:`kernel_quality`, :func:`generalization_rank`;
* the same on state arrays from any substrate (ESN states, LSM traces, rate
  populations): :func:`separation_of_states`, :func:`rank_of_states`,
  :func:`memory_capacity_of_states`;
* stability: :func:`effective_spectral_radius`, :func:`echo_state_check`,
  :func:`esp_sufficient` and :func:`reservoirs.spectral_radius`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from neuro.backend import asnumpy, make_rng

from neuro.validation import as_float_array, check_int, check_positive
from .readouts import Ridge
from .tasks import delayed_recall, delayed_targets
from .weights import spectral_radius

__all__ = [
    "echo_state_check",
    "effective_spectral_radius",
    "esp_sufficient",
    "generalization_rank",
    "kernel_quality",
    "memory_capacity",
    "memory_capacity_of_states",
    "rank_of_states",
    "separation_of_states",
    "nrmse",
    "rsquare",
    "separation",
    "spectral_radius",
    "state_rank",
]

_NORMS = ("std", "var", "range", "mean")


def _pair(y_true, y_pred):
    a = as_float_array(asnumpy(y_true), "y_true", np.float64, ndims=(1, 2, 3))
    b = as_float_array(asnumpy(y_pred), "y_pred", np.float64, ndims=(1, 2, 3))
    if a.shape != b.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    return a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])


def nrmse(y_true: Any, y_pred: Any, *, norm: str = "std", dimensionwise: bool = False):
    """Root mean squared error divided by a scale of ``y_true``.

    ``norm``: ``"std"`` (standard deviation, the default), ``"var"``
    (variance, as ReservoirPy's ``norm="var"``), ``"range"`` (max - min) or
    ``"mean"``. Inputs ``(T,)``, ``(T, O)`` or ``(B, T, O)``; a float over all
    outputs, or ``(O,)`` with ``dimensionwise``.
    """
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    a, b = _pair(y_true, y_pred)
    axis = 0 if dimensionwise else None
    rmse = np.sqrt(np.mean((a - b) ** 2, axis=axis))
    scale = {
        "std": lambda: np.std(a, axis=axis),
        "var": lambda: np.var(a, axis=axis),
        "range": lambda: np.ptp(a, axis=axis),
        "mean": lambda: np.mean(a, axis=axis),
    }[norm]()
    if np.any(scale == 0):
        raise ValueError(f"the {norm} of y_true is 0; NRMSE is undefined")
    out = rmse / scale
    return out if dimensionwise else float(out)


def rsquare(y_true: Any, y_pred: Any, *, dimensionwise: bool = False):
    """Coefficient of determination ``1 - SS_res / SS_tot`` per output, averaged (as scikit-learn's ``r2_score``)."""
    a, b = _pair(y_true, y_pred)
    ss_res = np.sum((a - b) ** 2, axis=0)
    ss_tot = np.sum((a - a.mean(axis=0)) ** 2, axis=0)
    if np.any(ss_tot == 0):
        raise ValueError("y_true is constant; R^2 is undefined")
    r2 = 1.0 - ss_res / ss_tot
    return r2 if dimensionwise else float(np.mean(r2))


def memory_capacity(
    esn: Any,
    max_delay: int,
    *,
    n_steps: int = 4000,
    warmup: int | None = None,
    ridge: float = 1e-9,
    test_fraction: float = 0.5,
    seed: Any = None,
    per_delay: bool = False,
):
    """Short-term memory capacity ``MC = sum_k r^2(y_k, u(t - k))`` for ``k = 1 .. max_delay`` (Jaeger 2001).

    Drives ``esn`` (one input feature) with i.i.d. ``U[-1, 1]`` input of
    ``n_steps`` steps, drops ``warmup`` steps (default ``max(max_delay, 100)``),
    fits one ridge readout per delay (all at once: ridge regression
    decouples over outputs) on the first part of the remaining states and
    scores the squared correlation on the last ``test_fraction`` of them
    (held-out data, so that fitting noise does not inflate MC). ``MC <= N``
    for ``N`` units. Returns a float, or with ``per_delay`` the ``(max_delay,)``
    array of ``r^2`` values.
    """
    max_delay = check_int(max_delay, "max_delay")
    n_steps = check_int(n_steps, "n_steps")
    u, _ = delayed_recall(n_steps, max_delay, seed=seed, dtype=esn.dtype)
    return memory_capacity_of_states(
        asnumpy(esn.run(u)), u, max_delay, warmup=warmup, ridge=ridge, test_fraction=test_fraction, per_delay=per_delay
    )


def memory_capacity_of_states(
    states: Any,
    u: Any,
    max_delay: int,
    *,
    warmup: int | None = None,
    ridge: float = 1e-9,
    test_fraction: float = 0.5,
    per_delay: bool = False,
):
    """:func:`memory_capacity` from the states ``(T, N)`` any system gave for the input ``u`` ``(T,)`` or ``(T, 1)``.

    The targets are ``u(t - k)``, ``k = 1 .. max_delay``; the first ``warmup``
    steps (default ``max(max_delay, 100)``) are dropped, a ridge readout per
    delay is fitted on the first part of the rest and the squared
    correlation scored on the last ``test_fraction``. ``u`` should be
    i.i.d. (e.g. ``U[-1, 1]``) for MC to mean memory.
    """
    states = as_float_array(asnumpy(states), "states", np.float64, ndims=(2,))
    u = as_float_array(asnumpy(u), "u", np.float64, ndims=(1, 2))
    u = u[:, None] if u.ndim == 1 else u
    if u.shape[1] != 1 or u.shape[0] != states.shape[0]:
        raise ValueError(f"u must be one input feature (T,) or (T, 1) with T = {states.shape[0]} (the states' length), got {u.shape}")
    max_delay = check_int(max_delay, "max_delay")
    n_steps = states.shape[0]
    warmup = max(max_delay, 100) if warmup is None else check_int(warmup, "warmup", minimum=0)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if warmup < max_delay:
        raise ValueError(f"warmup ({warmup}) must be >= max_delay ({max_delay}): earlier targets are undefined")
    usable = n_steps - warmup
    n_test = int(round(usable * test_fraction))
    if n_test < 10 or usable - n_test < 10:
        raise ValueError(f"n_steps ({n_steps}) leaves too few steps after warmup ({warmup}) to fit and score")
    targets = delayed_targets(u[:, 0], max_delay)[warmup:]
    states = states[warmup:]
    split = usable - n_test
    readout = Ridge(ridge).fit(states[:split], targets[:split])
    pred = readout.predict(states[split:])
    truth = targets[split:]
    pc = pred - pred.mean(axis=0)
    tc = truth - truth.mean(axis=0)
    denom = np.sum(pc**2, axis=0) * np.sum(tc**2, axis=0)
    r2 = np.where(denom > 0, np.sum(pc * tc, axis=0) ** 2 / np.where(denom > 0, denom, 1.0), 0.0)
    return r2 if per_delay else float(np.sum(r2))


def separation(esn: Any, u_a: Any, u_b: Any, h0: Any = None) -> np.ndarray:
    """Euclidean distance ``||x_a(t) - x_b(t)||`` between the state trajectories for two inputs ``(T, F)``: ``(T,)``.

    The separation property: inputs further apart should give states further apart.
    """
    xa = asnumpy(esn.run(u_a, h0))
    xb = asnumpy(esn.run(u_b, h0))
    if xa.shape != xb.shape or xa.ndim != 2:
        raise ValueError(f"u_a and u_b must be sequences (T, F) of the same shape, got states {xa.shape} and {xb.shape}")
    return separation_of_states(xa, xb)


def separation_of_states(states_a: Any, states_b: Any) -> np.ndarray:
    """Euclidean distance between two state trajectories, step by step: ``(..., T, N)`` twice -> ``(..., T)``.

    From any substrate: ESN states, LSM traces (``LSM.run``), filtered spike
    counts, rates. Identical trajectories give zeros.
    """
    xa = as_float_array(asnumpy(states_a), "states_a", np.float64, ndims=(2, 3))
    xb = as_float_array(asnumpy(states_b), "states_b", np.float64, ndims=(2, 3))
    if xa.shape != xb.shape:
        raise ValueError(f"states_a and states_b must have the same shape, got {xa.shape} and {xb.shape}")
    return np.linalg.norm(xa - xb, axis=-1)


def state_rank(esn: Any, inputs: Any, *, at: int = -1, rtol: float | None = None) -> int:
    """Numerical rank of the ``(M, N)`` matrix of states at step ``at`` for ``M`` input sequences ``(M, T, F)``.

    Singular values below ``rtol * s_max`` count as zero (default
    ``max(M, N) * eps``, as ``numpy.linalg.matrix_rank``).
    """
    states = asnumpy(esn.run(inputs))
    if states.ndim != 3:
        raise ValueError(f"inputs must be a batch (M, T, F), got states of shape {states.shape}")
    return rank_of_states(states, at=at, rtol=rtol)


def rank_of_states(states: Any, *, at: int = -1, rtol: float | None = None) -> int:
    """Numerical rank of the states of ``M`` trials: ``(M, T, N)`` at step ``at``, or ``(M, N)`` directly.

    Kernel quality (``M`` different inputs, higher is better) and
    generalization rank (``M`` noisy copies of one input, lower is better) of
    Legenstein & Maass (2007) for any substrate. Singular values below
    ``rtol * s_max`` count as zero (default ``max(M, N) * eps``, as
    ``numpy.linalg.matrix_rank``).
    """
    states = asnumpy(states)
    dtype = states.dtype if getattr(states, "dtype", None) is not None and states.dtype.kind == "f" else np.float64
    states = as_float_array(states, "states", dtype, ndims=(2, 3))
    X = states[:, at, :] if states.ndim == 3 else states
    s = np.linalg.svd(X, compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return 0
    tol = (max(X.shape) * np.finfo(X.dtype).eps) if rtol is None else check_positive(rtol, "rtol")
    return int(np.sum(s > tol * s[0]))


def kernel_quality(esn: Any, inputs: Any, *, at: int = -1, rtol: float | None = None) -> int:
    """Kernel quality (Legenstein & Maass 2007): :func:`state_rank` for ``M`` *different* inputs ``(M, T, F)``.

    Higher is better (at most ``min(M, N)``): the reservoir separates them.
    """
    return state_rank(esn, inputs, at=at, rtol=rtol)


def generalization_rank(
    esn: Any, base: Any, n_variants: int, noise: float, *, at: int = -1, rtol: float | None = None, seed: Any = None
) -> int:
    """Generalization rank (Legenstein & Maass 2007): :func:`state_rank` for noisy copies of one input.

    ``n_variants`` copies of ``base`` ``(T, F)`` plus Gaussian noise of SD
    ``noise``; lower is better (the reservoir maps similar inputs to similar states).
    """
    base = as_float_array(asnumpy(base), "base", np.float64, ndims=(2,))
    n_variants = check_int(n_variants, "n_variants")
    noise = check_positive(noise, "noise", allow_zero=True)
    rng = make_rng(seed)
    inputs = base[None] + noise * rng.standard_normal((n_variants,) + base.shape)
    return state_rank(esn, inputs, at=at, rtol=rtol)


def effective_spectral_radius(W: Any, leak_rate: float) -> float:
    """Spectral radius of ``(1 - a) I + a W``: the leaky network's linearization at 0 (Jaeger et al. 2007)."""
    a = check_positive(leak_rate, "leak_rate")
    n = W.shape[0]
    M = (1.0 - a) * scipy.sparse.identity(n, format="csr") + a * scipy.sparse.csr_matrix(W)
    return spectral_radius(M)


def esp_sufficient(W: Any) -> bool:
    """Sufficient condition for the echo-state property with tanh: largest singular value of ``W`` < 1.

    ``W``: the square ``(N, N)`` reservoir matrix (dense or SciPy sparse).
    """
    shape = getattr(W, "shape", None) if scipy.sparse.issparse(W) else np.shape(W)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"W must be a square (N, N) reservoir matrix, got shape {shape}")
    if scipy.sparse.issparse(W) and W.shape[0] > 32:
        s = scipy.sparse.linalg.svds(W.astype(np.float64), k=1, return_singular_vectors=False, random_state=0)[0]
    else:
        s = np.linalg.norm(W.toarray() if scipy.sparse.issparse(W) else np.asarray(W), 2)
    return bool(s < 1.0)


def echo_state_check(esn: Any, u: Any, *, n_trials: int = 5, scale: float = 1.0, seed: Any = None) -> np.ndarray:
    """Empirical echo-state check: drive from ``n_trials`` random initial states with the same input ``u`` ``(T, F)``.

    Initial states are ``U[-scale, scale]``. Returns ``(T,)``: the largest
    distance between any trajectory and the one started from 0 at each
    step; with the echo-state property it decays to 0 (the state forgets its start).
    """
    n_trials = check_int(n_trials, "n_trials")
    scale = check_positive(scale, "scale")
    u = as_float_array(asnumpy(u), "u", esn.dtype, ndims=(1, 2))
    if u.ndim == 1:
        u = u[:, None]
    rng = make_rng(seed)
    h0 = np.concatenate([np.zeros((1, esn.units)), rng.uniform(-scale, scale, size=(n_trials, esn.units))])
    states = asnumpy(esn.run(np.broadcast_to(u, (n_trials + 1,) + u.shape).copy(), h0))
    return np.max(np.linalg.norm(states[1:] - states[:1], axis=2), axis=0)
