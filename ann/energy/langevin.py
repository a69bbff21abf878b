r"""Continuous energy-based models: Langevin sampling and contrastive-divergence training with a replay buffer.

Langevin dynamics draws from :math:`p(x) \propto e^{-E(x)}`:

.. math::
    x_{k+1} = x_k - \lambda\, \mathrm{clip}(\nabla_x E(x_k)) + \sigma\, \omega_k, \qquad \omega_k \sim N(0, I)

with step size :math:`\lambda` and noise scale :math:`\sigma`; :math:`\sigma = \sqrt{2\lambda}` (the
default) is the unadjusted Langevin algorithm, whose stationary law tends to :math:`p` as
:math:`\lambda \to 0`. Du & Mordatch (2019) train image EBMs with a smaller, decoupled noise
scale, gradient clipping and samples started from a replay buffer of past samples
(:class:`ReplayBuffer`, :class:`EBMTrainer`).

The energy is an :class:`~ann.nn.Module` or any callable mapping a Tensor ``(B, ...)`` to the
energies ``(B,)`` through ``ann`` operations (so the autograd gives :math:`\nabla_x E`). A
Module's parameters are frozen while sampling (they receive no gradient); a plain callable's
own tensors, if any, accumulate gradients as in any backward pass.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from neuro.backend import array_module, resolve_dtype, to_device
from neuro.validation import check_int, check_nonneg, check_positive

from ..generator import make_rng
from ..nn.module import Module
from ..tensor import Tensor

__all__ = ["langevin_sample", "ReplayBuffer", "EBMTrainer"]


@contextlib.contextmanager
def _frozen(energy):
    """Parameters of a Module energy do not require grad inside the block (restored after)."""
    params = energy.parameters() if isinstance(energy, Module) else []
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


def _energy_values(energy, x: Tensor, name: str = "energy", check_finite: bool = True) -> Tensor:
    """``energy(x)`` as a ``(B,)`` Tensor, checked to be finite unless ``check_finite`` is False."""
    e = energy(x)
    if not isinstance(e, Tensor):
        raise TypeError(f"{name} must return an ann.Tensor of energies (B,), got {type(e).__name__}")
    if e.ndim == 2 and e.shape[1] == 1:
        e = e.reshape((-1,))
    if e.shape != (x.shape[0],):
        raise ValueError(f"{name} must return one energy per sample, shape ({x.shape[0]},); got {e.shape}")
    if check_finite:
        _check_finite(e.xp.isfinite(e.data).all(), name)
    return e


def _check_finite(flag, name: str) -> None:
    if not bool(flag):
        raise ValueError(f"{name} returned non-finite values (inf or nan); lower step_size or clip the gradient")


def _check_clamp(clamp):
    if clamp is None:
        return None
    try:
        lo, hi = (float(c) for c in clamp)
    except (TypeError, ValueError):
        raise TypeError(f"clamp must be None or a pair (low, high), got {clamp!r}") from None
    if not lo < hi:
        raise ValueError(f"clamp must have low < high, got {clamp!r}")
    return lo, hi


def langevin_sample(energy, x0, *, steps: int = 100, step_size: float = 0.01, noise_scale: float | None = None,
                    grad_clip: float | None = None, clamp=None, seed=None):
    """Run ``steps`` Langevin steps from ``x0`` ``(B, ...)`` (NumPy or CuPy, floating) down ``energy``.

    ``x <- x - step_size * clip(grad E(x)) + noise_scale * N(0, I)``; ``noise_scale`` defaults to
    ``sqrt(2 step_size)`` (samples ``exp(-E)`` as ``step_size -> 0``); ``grad_clip`` clips each
    gradient element to ``[-grad_clip, grad_clip]``; ``clamp=(low, high)`` clips ``x`` after each
    step (e.g. image pixels). The noise is drawn on the host from ``seed`` (int or Generator).
    Returns the final ``x`` (a new array of ``x0``'s module, dtype and shape).
    """
    steps = check_int(steps, "steps")
    step_size = check_positive(step_size, "step_size")
    noise_scale = math.sqrt(2 * step_size) if noise_scale is None else check_nonneg(noise_scale, "noise_scale")
    grad_clip = None if grad_clip is None else check_positive(grad_clip, "grad_clip")
    clamp = _check_clamp(clamp)
    if not callable(energy):
        raise TypeError(f"energy must be an ann Module or a callable, got {type(energy).__name__}")
    xp = array_module(x0)
    x = xp.array(x0, copy=True)
    if x.dtype.kind != "f" or x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"x0 must be a floating array (B, ...), got dtype {x.dtype} and shape {tuple(x.shape)}")
    if not bool(xp.isfinite(x).all()):
        raise ValueError("x0 must be finite")
    rng = make_rng(seed)
    finite = True  # checked once at the end: no device sync per step
    with _frozen(energy):
        for _ in range(steps):
            xt = Tensor(x, requires_grad=True)
            e = _energy_values(energy, xt, check_finite=False)
            finite = finite & xp.isfinite(e.data).all()
            e.sum().backward()
            g = xt.grad
            if grad_clip is not None:
                g = xp.clip(g, -grad_clip, grad_clip)
            x = x - step_size * g
            if noise_scale:
                x += noise_scale * xp.asarray(rng.standard_normal(x.shape), dtype=x.dtype)
            if clamp is not None:
                x = xp.clip(x, *clamp)
    _check_finite(finite, "energy")
    return x


class ReplayBuffer:
    """A fixed-size store of past Langevin samples (Du & Mordatch 2019), FIFO once full.

    :meth:`sample` draws ``n`` starts: each is, with probability ``reinit_prob`` (or always while
    the buffer is empty), fresh noise uniform in ``init_range``, else a stored sample chosen at
    random. :meth:`push` appends samples, dropping the oldest beyond ``capacity``.
    ``shape``: one sample's shape; the samples live on ``backend`` (default: the current one).
    """

    def __init__(self, capacity: int, shape, *, reinit_prob: float = 0.05, init_range=(-1.0, 1.0), dtype=np.float32,
                 backend: str | None = None, seed=None):
        self.capacity = check_int(capacity, "capacity")
        self.shape = tuple(int(s) for s in shape)
        if not 0.0 <= reinit_prob <= 1.0:
            raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob}")
        self.reinit_prob = float(reinit_prob)
        self.init_range = _check_clamp(init_range)
        self.dtype = resolve_dtype(dtype)
        self.rng = make_rng(seed)
        self.data = to_device(np.zeros((0,) + self.shape), backend, self.dtype)
        self.xp = array_module(self.data)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def _noise(self, n: int):
        lo, hi = self.init_range
        return self.xp.asarray(self.rng.uniform(lo, hi, (n,) + self.shape), dtype=self.dtype)

    def sample(self, n: int):
        """``n`` starting points ``(n, *shape)``."""
        n = check_int(n, "n")
        if len(self) == 0:
            return self._noise(n)
        fresh = self.xp.asarray((self.rng.random(n) < self.reinit_prob)[:, None])
        stored = self.data[self.xp.asarray(self.rng.integers(0, len(self), n))]
        return self.xp.where(fresh.reshape((n,) + (1,) * len(self.shape)), self._noise(n), stored)

    def push(self, x) -> None:
        """Append ``x`` ``(n, *shape)``; keep the newest ``capacity`` samples."""
        x = self.xp.asarray(x, dtype=self.dtype)
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"x must have shape (n, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        self.data = self.xp.concatenate([self.data, x])[-self.capacity:]


class EBMTrainer:
    """Contrastive-divergence training of an energy Module with Langevin negatives from a replay buffer.

    Each :meth:`step` on a data batch ``x+`` (Du & Mordatch 2019):

    1. start ``x-`` from ``buffer.sample(B)`` and run :func:`langevin_sample` (``steps``, ``step_size``,
       ``noise_scale``, ``grad_clip``, ``clamp``); push the result back into the buffer;
    2. minimize ``mean E(x+) - mean E(x-) + alpha (mean E(x+)**2 + mean E(x-)**2)`` with ``optimizer``
       (``alpha`` keeps the energies near 0; ``alpha = 0`` is the plain maximum-likelihood gradient).

    ``model``: an ann Module mapping ``(B, ...)`` to energies ``(B,)``; ``optimizer``: an ``ann.optim``
    optimizer over its parameters.
    """

    def __init__(self, model: Module, optimizer, buffer: ReplayBuffer, *, steps: int = 60, step_size: float = 10.0,
                 noise_scale: float | None = 0.005, grad_clip: float | None = 0.01, clamp=None, alpha: float = 1.0,
                 seed=None):
        if not isinstance(model, Module):
            raise TypeError(f"model must be an ann Module, got {type(model).__name__}")
        if not isinstance(buffer, ReplayBuffer):
            raise TypeError(f"buffer must be a ReplayBuffer, got {type(buffer).__name__}")
        self.model, self.optimizer, self.buffer = model, optimizer, buffer
        self.langevin = dict(steps=steps, step_size=step_size, noise_scale=noise_scale, grad_clip=grad_clip,
                             clamp=clamp)
        self.alpha = check_nonneg(alpha, "alpha")
        self.rng = make_rng(seed)

    def step(self, x_data) -> dict:
        """One update on ``x_data`` ``(B, ...)``; returns the floats ``loss``, ``energy_data``, ``energy_samples``."""
        xp = array_module(x_data)
        x_data = xp.asarray(x_data)
        start = self.buffer.sample(x_data.shape[0]).astype(x_data.dtype, copy=False)
        x_neg = langevin_sample(self.model, start, seed=self.rng, **self.langevin)
        self.buffer.push(x_neg)
        self.optimizer.zero_grad()
        e_pos = _energy_values(self.model, Tensor(x_data), "model")
        e_neg = _energy_values(self.model, Tensor(x_neg), "model")
        loss = e_pos.mean() - e_neg.mean()
        if self.alpha:
            loss = loss + self.alpha * ((e_pos * e_pos).mean() + (e_neg * e_neg).mean())
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.item()), "energy_data": float(e_pos.data.mean()),
                "energy_samples": float(e_neg.data.mean())}
