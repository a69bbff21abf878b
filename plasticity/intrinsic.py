r"""Intrinsic plasticity: each unit adapts its own gain and bias toward a target output distribution.

A unit with net input :math:`x` (what it would feed its nonlinearity) answers

.. math::
    y = f(a x + b)

with a gain :math:`a` and a bias :math:`b` per unit (the state). Intrinsic
plasticity (IP) is stochastic gradient descent, one sample at a time, on the
Kullback-Leibler divergence :math:`D_{KL}(p_y \,\|\, p_{target})` between the
unit's output distribution and a target. Per sample the loss is (up to
constants) :math:`\ell(a, b) = -\log a - \log f'(a x + b) - \log p_{target}(y)`
and the update is :math:`\Delta b = -\eta\, \partial\ell/\partial b`,
:math:`\Delta a = -\eta\, \partial\ell/\partial a = \eta / a + x\, \Delta b`
(averaged over the batch):

* ``activation="sigmoid"`` (:math:`f(u) = 1/(1+e^{-u})`), exponential target
  of mean :math:`\mu` (Triesch 2005):
  :math:`\Delta b = \eta\,(1 - (2 + 1/\mu)\, y + y^2/\mu)`;
* ``activation="tanh"``, Gaussian target :math:`\mathcal N(\mu, \sigma^2)`
  (Schrauwen et al. 2008):
  :math:`\Delta b = -\eta\,\big(-\mu/\sigma^2 + (y/\sigma^2)(2\sigma^2 + 1 - y^2 + \mu y)\big)`.

This is not a weight rule (it has no ``W``), so its methods take the net
input ``x`` of shape ``(B, n)`` (or ``(n,)``) and the state
``{"gain": (n,), "bias": (n,)}`` from :meth:`IntrinsicPlasticity.init_state`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuro.backend import array_module, asnumpy, resolve_dtype

from neuro.validation import check_choice, check_positive, check_real

__all__ = ["IntrinsicPlasticity", "kl_to_target"]


@dataclass(frozen=True)
class IntrinsicPlasticity:
    r"""Gain and bias adaptation toward a target output distribution (see the module docstring).

    Parameters:
        lr: :math:`\eta` (> 0), per presentation.
        activation: ``"tanh"`` (Gaussian target) or ``"sigmoid"`` (exponential target).
        mu: the target mean; default 0.0 for tanh (in (-1, 1)), 0.2 for sigmoid (in (0, 1)).
        sigma: the Gaussian target's standard deviation (> 0; tanh only), default 0.2.
    """

    lr: float = 1e-3
    activation: str = "tanh"
    mu: float | None = None
    sigma: float = 0.2

    def __post_init__(self):
        object.__setattr__(self, "lr", check_positive(self.lr, "lr"))
        check_choice(self.activation, "activation", ("tanh", "sigmoid"))
        mu = (0.0 if self.activation == "tanh" else 0.2) if self.mu is None else check_real(self.mu, "mu")
        lo, hi = (-1.0, 1.0) if self.activation == "tanh" else (0.0, 1.0)
        if not lo < mu < hi:
            raise ValueError(f"mu must lie in ({lo}, {hi}) for activation={self.activation!r}, got {mu}")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", check_positive(self.sigma, "sigma"))

    # ----------------------------------------------------------- state, output

    def init_state(self, n: int, *, gain0: float = 1.0, bias0: float = 0.0, dtype=None, like=None) -> dict:
        """``{"gain": (n,), "bias": (n,)}`` filled with ``gain0`` (> 0) and ``bias0``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int (the number of units), got {n!r}")
        gain0 = check_positive(gain0, "gain0")
        bias0 = check_real(bias0, "bias0")
        xp = array_module(like) if like is not None else array_module()
        dtype = resolve_dtype(dtype if dtype is not None else getattr(like, "dtype", None))
        return {"gain": xp.full(int(n), gain0, dtype=dtype), "bias": xp.full(int(n), bias0, dtype=dtype)}

    def _f(self, xp, u):
        if self.activation == "tanh":
            return xp.tanh(u)
        return 1.0 / (1.0 + xp.exp(-u))

    def _net(self, x, state):
        self._check_state(state)
        xp = array_module(x, state["gain"])
        x = xp.asarray(x, dtype=state["gain"].dtype)
        if x.ndim == 1:
            x = x[None, :]
        n = state["gain"].shape[0]
        if x.ndim != 2 or x.shape[1] != n:
            raise ValueError(f"x must have shape (B, {n}) or ({n},), got {tuple(x.shape)}")
        return xp, x

    def _check_state(self, state):
        if not isinstance(state, dict) or "gain" not in state or "bias" not in state:
            raise ValueError("IntrinsicPlasticity needs its state: state = ip.init_state(n)")

    def activate(self, x, state):
        """The outputs :math:`y = f(a x + b)`, ``(B, n)``, for net inputs ``x`` ``(B, n)``."""
        xp, x = self._net(x, state)
        return self._f(xp, state["gain"] * x + state["bias"])

    # ------------------------------------------------------------------ rule

    def _bias_drive(self, y):
        """:math:`-\\partial\\ell/\\partial b` per sample (without :math:`\\eta`)."""
        mu = self.mu
        if self.activation == "sigmoid":
            return 1.0 - (2.0 + 1.0 / mu) * y + y * y / mu
        s2 = self.sigma**2
        return -(-mu / s2 + (y / s2) * (2.0 * s2 + 1.0 - y * y + mu * y))

    def delta(self, x, state) -> dict:
        """The batch-averaged changes ``{"gain": (n,), "bias": (n,)}`` for net inputs ``x``; pure."""
        xp, x = self._net(x, state)
        y = self._f(xp, state["gain"] * x + state["bias"])
        db = self.lr * self._bias_drive(y)
        da = self.lr / state["gain"] + x * db
        return {"gain": da.mean(axis=0), "bias": db.mean(axis=0)}

    def step(self, x, state):
        """Update ``state`` in place and return the outputs ``(B, n)`` computed before the update."""
        y = self.activate(x, state)
        d = self.delta(x, state)
        state["gain"] += d["gain"]
        state["bias"] += d["bias"]
        # a gain that crossed zero would flip the unit: keep it positive
        xp = array_module(state["gain"])
        xp.maximum(state["gain"], 1e-6, out=state["gain"])
        return y

    def target_pdf(self, y):
        """The target density at outputs ``y`` (NumPy; the exponential one truncated to (0, 1) and renormalized)."""
        y = np.asarray(asnumpy(y), dtype=float)
        if self.activation == "tanh":
            return np.exp(-((y - self.mu) ** 2) / (2 * self.sigma**2)) / (self.sigma * np.sqrt(2 * np.pi))
        lam = 1.0 / self.mu
        return np.where((y >= 0) & (y <= 1), lam * np.exp(-lam * y) / (1 - np.exp(-lam)), 0.0)


def kl_to_target(y, ip: IntrinsicPlasticity, *, bins: int = 40) -> float:
    r"""Histogram estimate of :math:`D_{KL}(p_y \,\|\, p_{target})` in nats.

    ``y``: samples of one unit's output (any shape, flattened). The output
    range (``(-1, 1)`` for tanh, ``(0, 1)`` for sigmoid) is cut into ``bins``
    equal bins; the target's mass per bin is its density at the bin centre
    times the width, renormalized over the range. Empty bins contribute 0.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got {bins!r}")
    y = np.asarray(asnumpy(y), dtype=float).ravel()
    lo, hi = (-1.0, 1.0) if ip.activation == "tanh" else (0.0, 1.0)
    counts, edges = np.histogram(np.clip(y, lo, hi), bins=bins, range=(lo, hi))
    p = counts / counts.sum()
    centres = 0.5 * (edges[1:] + edges[:-1])
    q = ip.target_pdf(centres)
    q = q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-300))))
