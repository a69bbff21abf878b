"""Small rate-based components for the :class:`neuro.Simulator` (the coupling protocol).

:class:`RateReadout` turns spikes into rates and rates into outputs: the
simplest thing to couple to a spiking population.
"""

from __future__ import annotations

import numpy as np

from .validation import check_positive, warn_dt

__all__ = ["RateReadout"]


class RateReadout:
    """Exponentially filtered input and a linear readout of it.

    Each tick: ``r <- r exp(-dt/tau) + x / (tau * 1e-3)`` (so ``r`` is a rate
    estimate in Hz for 0/1 spike inputs) and ``y = r @ W.T + bias``.

    Parameters
    ----------
    n_in, n_out : sizes of input ``x`` and output ``y``
    tau : filter time constant, ms
    dt : tick, ms
    W : (n_out, n_in) readout weights (default: the mean over inputs,
        i.e. ``1/n_in`` everywhere, needing ``n_out == 1`` or any shape you give)
    bias : (n_out,) or scalar

    Ports: inputs ``{"x": n_in}``, outputs ``{"r": n_in, "y": n_out}``.
    """

    def __init__(self, n_in: int, n_out: int = 1, *, tau: float = 20.0, dt: float = 0.1, W=None, bias=0.0):
        for name, n in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.tau, self.dt = check_positive(tau, "tau"), check_positive(dt, "dt")
        warn_dt(self.dt, {"tau": self.tau})
        W = np.full((self.n_out, self.n_in), 1.0 / self.n_in) if W is None else np.asarray(W, dtype=np.float64)
        if W.shape != (self.n_out, self.n_in):
            raise ValueError(f"W must have shape ({self.n_out}, {self.n_in}), got {W.shape}")
        self.W = W
        self.bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), (self.n_out,)).copy()
        self._decay = np.exp(-self.dt / self.tau)
        self.r = None

    @property
    def ports(self):
        return {"inputs": {"x": self.n_in}, "outputs": {"r": self.n_in, "y": self.n_out}}

    def __repr__(self) -> str:
        return f"RateReadout(n_in={self.n_in}, n_out={self.n_out}, tau={self.tau:g} ms, dt={self.dt:g} ms)"

    def reset(self, batch_size: int, seed=None) -> None:
        self.r = np.zeros((batch_size, self.n_in))

    def step(self, t, inputs):
        x = inputs.get("x")
        self.r *= self._decay
        if x is not None:
            x = np.asarray(x, dtype=np.float64)
            if x.shape != self.r.shape:
                raise ValueError(f"input x must have shape {self.r.shape}, got {x.shape}")
            self.r += x / (self.tau * 1e-3)
        return {"r": self.r.copy(), "y": self.r @ self.W.T + self.bias}

    def run(self, x) -> np.ndarray:
        """Standalone use from a fresh state: ``x`` (B, T, n_in) -> ``y`` (B, T, n_out); (T, n_in) -> (T, n_out)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim not in (2, 3) or x.shape[-1] != self.n_in:
            raise ValueError(f"x must have shape (B, T, {self.n_in}) or (T, {self.n_in}), got {x.shape}")
        if x.ndim == 2:
            return self.run(x[None])[0]
        self.reset(x.shape[0])
        return np.stack([self.step(None, {"x": x[:, k]})["y"] for k in range(x.shape[1])], axis=1)
