"""Compute-optimal scaling laws: the fits of Hoffmann et al. (2022), "Training compute-optimal large language models".

* :func:`fit_loss` fits ``L(N, D) = E + A / N**alpha + B / D**beta`` (``N``
  parameters, ``D`` training tokens) as the paper's approach 3: minimize the
  Huber loss (``delta = 1e-3``) between the log of the predicted and the
  observed losses with L-BFGS from a grid of initial points, keep the best.
* :func:`fit_parabola` / :func:`isoflop_minima`: approach 2, a parabola in
  ``log N`` through the losses of one compute budget (an IsoFLOP curve) and its
  minimum ``N_opt``.
* :func:`fit_power_law`: ``y = k * x**a`` by least squares in log-log, for
  ``N_opt ~ C**a`` and ``D_opt ~ C**b``.
* :data:`CHINCHILLA`: the paper's published fit (E 1.69, A 406.4, B 410.7,
  alpha 0.34, beta 0.28; loss in nats per token) and :func:`compute_optimal`,
  the ``(N, D)`` minimizing a fit's loss at a budget ``C = 6 N D`` FLOPs.

Note: the rounded published fit does not give the "20 tokens per parameter"
rule of thumb. Its compute-optimal ratio ``D/N`` grows with the budget (as
``C**((alpha - beta) / (alpha + beta))``): it is 26 at ``C = 1e18``, 50 at
``1e21``, 93 at Chinchilla's own budget ``5.76e23`` (``N = 32e9``,
``D = 3.0e12`` where the paper trained 70e9 on 1.4e12) and 122 at ``1e25``
(computed by :meth:`LossFit.tokens_per_parameter`, checked in the tests).
Besiroglu et al. (2024, "Chinchilla scaling: a replication attempt") found
the published fit inconsistent with the paper's approaches 1 and 2 and
refitted the paper's data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CHINCHILLA",
    "LossFit",
    "Parabola",
    "PowerLaw",
    "compute_optimal",
    "fit_loss",
    "fit_parabola",
    "fit_power_law",
    "isoflop_minima",
    "training_flops",
]

#: The initial-point grid of Hoffmann et al. (appendix D.2): alpha, beta in {0, 0.5, ..., 2},
#: e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} (4,500 points; ``a = log A``, ``e = log E``).
PAPER_INITS = dict(alpha=np.arange(0.0, 2.01, 0.5), beta=np.arange(0.0, 2.01, 0.5), e=np.arange(-1.0, 1.01, 0.5),
                   a=np.arange(0.0, 25.1, 5.0), b=np.arange(0.0, 25.1, 5.0))
#: The default grid: a coarser one over the same ranges (32 points).
DEFAULT_INITS = dict(alpha=[0.3, 1.0], beta=[0.3, 1.0], e=[-1.0, 0.5], a=[3.0, 10.0], b=[3.0, 10.0])


def training_flops(n_params, n_tokens, flops_per_param_token: float = 6.0):
    """Training compute ``C = 6 N D`` FLOPs (forward and backward pass, Kaplan et al. 2020)."""
    return flops_per_param_token * np.asarray(n_params, dtype=np.float64) * np.asarray(n_tokens, dtype=np.float64)


def _positive_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be a non-empty 1-D array of positive finite numbers, got {x!r}")
    return np.atleast_1d(arr)


@dataclass(frozen=True)
class LossFit:
    """``L(N, D) = E + A / N**alpha + B / D**beta``."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __call__(self, n_params, n_tokens):
        """The predicted loss for ``N`` parameters trained on ``D`` tokens (arrays broadcast)."""
        n = np.asarray(n_params, dtype=np.float64)
        d = np.asarray(n_tokens, dtype=np.float64)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def compute_optimal(self, flops, flops_per_param_token: float = 6.0):
        """``(N_opt, D_opt)`` minimizing the loss at ``C = 6 N D``; see :func:`compute_optimal`."""
        return compute_optimal(flops, self, flops_per_param_token)

    def tokens_per_parameter(self, flops, flops_per_param_token: float = 6.0):
        """``D_opt / N_opt`` at budget ``flops``."""
        n, d = self.compute_optimal(flops, flops_per_param_token)
        return d / n


#: Hoffmann et al. (2022), eq. (10): the published (rounded) fit, loss in nats per token.
CHINCHILLA = LossFit(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def compute_optimal(flops, fit: LossFit = CHINCHILLA, flops_per_param_token: float = 6.0):
    """The compute-optimal allocation of a budget: ``(N_opt, D_opt)`` with ``6 N D = C``.

    Closed form (Hoffmann et al. eq. 4): ``N_opt = G (C/6)**(beta/(alpha+beta))``,
    ``D_opt = (C/6) / N_opt``, ``G = (alpha A / (beta B))**(1/(alpha+beta))``.
    ``flops`` is a scalar or an array; the results have its shape. With the
    rounded :data:`CHINCHILLA` fit this gives about 93 tokens per parameter at
    ``C = 5.76e23``, not 20 (see the module docstring).
    """
    c = np.asarray(flops, dtype=np.float64)
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"flops must be positive and finite, got {flops!r}")
    if not isinstance(fit, LossFit):
        raise TypeError(f"fit must be a LossFit, got {type(fit).__name__}")
    if fit.alpha <= 0 or fit.beta <= 0 or fit.A <= 0 or fit.B <= 0:
        raise ValueError(f"fit must have positive A, B, alpha and beta, got {fit}")
    s = fit.alpha + fit.beta
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / s)
    budget = c / flops_per_param_token
    n = g * budget ** (fit.beta / s)
    return n, budget / n


def _objective(theta, log_n, log_d, log_l, delta):
    """Huber loss of ``LSE(a - alpha log N, b - beta log D, e) - log L`` summed, and its gradient."""
    a, b, e, alpha, beta = theta
    t0, t1 = a - alpha * log_n, b - beta * log_d
    m = np.maximum(np.maximum(t0, t1), e)  # log-sum-exp written out: scipy's costs 10x more per call here
    w0, w1, w2 = np.exp(t0 - m), np.exp(t1 - m), np.exp(e - m)
    total = w0 + w1 + w2
    r = m + np.log(total) - log_l
    abs_r = np.abs(r)
    value = np.where(abs_r <= delta, 0.5 * r * r, delta * (abs_r - 0.5 * delta)).sum()
    dr = np.clip(r, -delta, delta) / total  # d huber / d r, times the softmax normalization
    g0, g1, g2 = w0 * dr, w1 * dr, w2 * dr
    grad = np.array([g0.sum(), g1.sum(), g2.sum(), -(g0 @ log_n), -(g1 @ log_d)])
    return value, grad


def fit_loss(n_params, n_tokens, losses, *, delta: float = 1e-3, inits: dict | None = None) -> LossFit:
    """Fit ``L(N, D) = E + A/N**alpha + B/D**beta`` to observed losses (Hoffmann et al. approach 3).

    Minimizes ``sum Huber_delta(LSE(a - alpha log N, b - beta log D, e) - log L)``
    over ``(a, b, e, alpha, beta)`` (``A = exp(a)``, ``B = exp(b)``, ``E = exp(e)``)
    with L-BFGS (analytic gradient) from every point of the grid ``inits`` (a
    dict of lists for ``alpha, beta, e, a, b``; default :data:`DEFAULT_INITS`,
    :data:`PAPER_INITS` is the paper's 4,500-point grid) and returns the best.

    Parameters
    ----------
    n_params, n_tokens, losses : 1-D arrays of the same length ``(M,)``, ``M >= 5``, positive.
    delta : the Huber threshold on log-loss residuals (the paper's 1e-3).
    """
    from scipy.optimize import minimize

    log_n = np.log(_positive_array(n_params, "n_params"))
    log_d = np.log(_positive_array(n_tokens, "n_tokens"))
    log_l = np.log(_positive_array(losses, "losses"))
    if not log_n.size == log_d.size == log_l.size:
        raise ValueError(f"n_params, n_tokens and losses must have the same length, got {log_n.size}, {log_d.size}, {log_l.size}")
    if log_n.size < 5:
        raise ValueError(f"fitting 5 parameters needs at least 5 runs, got {log_n.size}")
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta!r}")
    grid = DEFAULT_INITS if inits is None else inits
    missing = {"alpha", "beta", "e", "a", "b"} - set(grid)
    if missing:
        raise ValueError(f"inits must give lists for alpha, beta, e, a and b; missing {sorted(missing)}")
    best = None
    for alpha, beta, e, a, b in itertools.product(grid["alpha"], grid["beta"], grid["e"], grid["a"], grid["b"]):
        res = minimize(_objective, np.array([a, b, e, alpha, beta], dtype=np.float64), args=(log_n, log_d, log_l, delta),
                       jac=True, method="L-BFGS-B")
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise RuntimeError("fit_loss: no start of the grid reached a finite objective")
    a, b, e, alpha, beta = best.x
    return LossFit(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha), beta=float(beta))


@dataclass(frozen=True)
class Parabola:
    """``L = c2 (log N)**2 + c1 log N + c0`` (natural log) through one IsoFLOP curve, and its minimum."""

    coefficients: tuple  # (c2, c1, c0), highest power first as numpy.polyfit
    n_opt: float  # argmin N (nan when the parabola opens downwards)
    loss_opt: float  # the parabola's value at n_opt

    def __call__(self, n_params):
        return np.polyval(self.coefficients, np.log(np.asarray(n_params, dtype=np.float64)))


def fit_parabola(n_params, losses) -> Parabola:
    """Least-squares parabola of the losses in ``log N`` (one compute budget); its minimum.

    ``n_params`` and ``losses`` are 1-D ``(M,)`` with ``M >= 3`` distinct ``N``.
    ``n_opt`` is ``nan`` when the fitted curvature is not positive (no minimum).
    """
    log_n = np.log(_positive_array(n_params, "n_params"))
    loss = np.asarray(losses, dtype=np.float64)
    if loss.shape != log_n.shape or not np.all(np.isfinite(loss)):
        raise ValueError(f"losses must be finite and match n_params {log_n.shape}, got shape {loss.shape}")
    if np.unique(log_n).size < 3:
        raise ValueError(f"a parabola needs at least 3 distinct n_params, got {np.unique(log_n).size}")
    c2, c1, c0 = np.polyfit(log_n, loss, 2)
    if c2 <= 0:
        return Parabola((float(c2), float(c1), float(c0)), float("nan"), float("nan"))
    x = -c1 / (2 * c2)
    return Parabola((float(c2), float(c1), float(c0)), float(np.exp(x)), float(c0 - c1**2 / (4 * c2)))


def isoflop_minima(flops, n_params, losses) -> dict:
    """One parabola per distinct budget in ``flops`` (1-D, same length as the others).

    Returns ``{"flops": (K,), "n_opt": (K,), "d_opt": (K,), "loss_opt": (K,), "interior": (K,) bool,
    "parabolas": [Parabola]}`` sorted by budget, with ``d_opt = C / (6 n_opt)``; ``interior`` is true
    where ``n_opt`` lies within that budget's sampled ``n_params`` (a minimum outside them is an
    extrapolation, better left out of power-law fits).
    """
    c = _positive_array(flops, "flops")
    n = _positive_array(n_params, "n_params")
    loss = np.asarray(losses, dtype=np.float64)
    if not c.shape == n.shape == loss.shape:
        raise ValueError(f"flops, n_params and losses must have the same shape, got {c.shape}, {n.shape}, {loss.shape}")
    budgets = np.unique(c)
    parabolas = [fit_parabola(n[c == b], loss[c == b]) for b in budgets]
    n_opt = np.array([p.n_opt for p in parabolas])
    interior = np.array([n[c == b].min() <= x <= n[c == b].max() for b, x in zip(budgets, n_opt)], dtype=bool)
    return {"flops": budgets, "n_opt": n_opt, "d_opt": budgets / (6.0 * n_opt),
            "loss_opt": np.array([p.loss_opt for p in parabolas]), "interior": interior, "parabolas": parabolas}


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient * x**exponent``."""

    exponent: float
    coefficient: float

    def __call__(self, x):
        return self.coefficient * np.asarray(x, dtype=np.float64) ** self.exponent


def fit_power_law(x, y) -> PowerLaw:
    """Least-squares line through ``(log x, log y)``: ``y = k x**a`` (1-D, ``M >= 2`` distinct ``x``, positive)."""
    lx = np.log(_positive_array(x, "x"))
    ly = np.log(_positive_array(y, "y"))
    if lx.shape != ly.shape:
        raise ValueError(f"x and y must have the same length, got {lx.size} and {ly.size}")
    if np.unique(lx).size < 2:
        raise ValueError("a power law needs at least 2 distinct x")
    a, log_k = np.polyfit(lx, ly, 1)
    return PowerLaw(float(a), float(np.exp(log_k)))
