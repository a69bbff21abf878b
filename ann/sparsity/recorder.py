"""A forward-hook recorder of activation sparsity per activation site of any model.

For each recorded site (a module whose output is a hidden activation, last
axis = neurons), over every forward pass since the last :meth:`reset`:

* ``zero_fraction``: the fraction of exact zeros among all outputs;
* ``small_fraction``: the fraction with ``|a| <= eps`` (the meaningful figure
  for smooth activations such as GELU and SiLU, which give almost no exact zeros);
* ``frequency``: per neuron, the fraction of tokens (rows) on which it is active;
* ``dead``: the neurons active on no token at all (over the whole data set seen);
* ``window_usage[w]``: for sequences ``(..., T, H)``, the mean over
  non-overlapping windows of ``w`` consecutive tokens of the fraction of
  neurons active at least once in the window ("aggregated sparsity" of
  Mirzadeh et al. 2023 is ``1 - window_usage[w]``).

A neuron is *active* on a token when its output is nonzero
(``active="nonzero"``, the default) or positive (``active="positive"``: the
dying-ReLU notion for leaky ReLU, PReLU and ELU, whose negative outputs are
never zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from neuro.backend import array_module, asnumpy

from .. import activations as A
from ..nn.activation import Activation, PReLU, SparseReLU
from ..nn.module import Module
from ..tensor import Tensor

__all__ = ["SparsityRecorder", "SiteStats", "activation_sites", "is_activation"]

ACTIVE_MODES = ("nonzero", "positive")


def is_activation(module: Module) -> bool:
    """True for modules that produce a hidden activation: elementwise or gated :class:`Activation` s
    (not softmax-like or the identity), :class:`PReLU`, :class:`SparseReLU`."""
    if isinstance(module, (PReLU, SparseReLU)):
        return True
    if isinstance(module, Activation):
        try:
            kind = A.spec(module.name).kind
        except ValueError:  # an Activation subclass with its own name (e.g. ShiftedReGLU)
            return True
        return kind != "normalizing" and module.name != "linear"
    return False


def activation_sites(model: Module) -> list[str]:
    """The dotted names of the activation modules of ``model`` (see :func:`is_activation`), in order."""
    return [name for name, m in model.named_modules() if is_activation(m)]


@dataclass
class SiteStats:
    """Running counts of one site (plain integers and int64 arrays)."""

    n_values: int = 0
    n_zero: int = 0
    n_small: int = 0
    n_tokens: int = 0
    active_count: np.ndarray | None = None  # (H,) tokens on which each neuron was active
    window_sum: dict = field(default_factory=dict)  # w -> summed usage fractions
    window_n: dict = field(default_factory=dict)  # w -> number of windows

    def summary(self, eps: float) -> dict:
        if self.n_tokens == 0:
            raise ValueError("no activations were recorded at this site yet")
        freq = self.active_count / self.n_tokens
        dead = np.flatnonzero(self.active_count == 0)
        return {
            "zero_fraction": self.n_zero / self.n_values,
            "small_fraction": self.n_small / self.n_values,
            "eps": eps,
            "n_tokens": self.n_tokens,
            "n_neurons": int(freq.size),
            "frequency": freq,
            "dead": dead,
            "dead_fraction": dead.size / freq.size,
            "window_usage": {w: self.window_sum[w] / self.window_n[w] for w in sorted(self.window_n)},
        }


def _check_windows(windows) -> tuple:
    out = []
    for w in windows:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise ValueError(f"windows must hold positive ints, got {w!r}")
        out.append(int(w))
    return tuple(out)


class SparsityRecorder:
    """Record the activation sparsity of ``model`` through forward hooks (see the module doc).

    Parameters
    ----------
    model : Module
    sites : dotted module names to record (default: :func:`activation_sites`).
    eps : threshold of ``small_fraction`` (``|a| <= eps``).
    windows : window lengths ``w`` (tokens) of ``window_usage``; sites whose
        outputs are ``(..., T, H)`` with ``T >= w`` are windowed along axis ``-2``.
    active : ``"nonzero"`` or ``"positive"`` (what counts as active).

    Notes
    -----
    Recording happens on every call of the model (training or not; gradients
    untouched). ``summary()`` returns ``{site: dict}``; ``reset()`` clears the
    counts; ``remove()`` detaches the hooks.
    """

    def __init__(self, model: Module, sites: Iterable[str] | None = None, eps: float = 1e-3,
                 windows: Iterable[int] = (), active: str = "nonzero"):
        if not isinstance(model, Module):
            raise TypeError(f"model must be an ann.nn.Module, got {type(model).__name__}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        if active not in ACTIVE_MODES:
            raise ValueError(f"active must be one of {ACTIVE_MODES}, got {active!r}")
        self.sites = list(activation_sites(model) if sites is None else sites)
        if not self.sites:
            raise ValueError("model has no activation sites to record; pass sites=[dotted names]")
        self.eps = float(eps)
        self.windows = _check_windows(windows)
        self.active = active
        self.stats: dict[str, SiteStats] = {}
        self._handles = []
        for name in self.sites:
            module = model.get_submodule(name)  # AttributeError names a bad site
            self._handles.append(module.register_forward_hook(self._hook(name)))
        self.reset()

    def _hook(self, name: str):
        def hook(module, args, output):
            self.record(name, output)

        return hook

    def record(self, name: str, output) -> None:
        """Add one activation array ``(..., H)`` (Tensor or array) to site ``name``'s counts."""
        a = output.data if isinstance(output, Tensor) else output
        xp = array_module(a)
        if a.ndim == 0:
            raise ValueError(f"site {name!r} produced a scalar; activations need a neuron axis")
        s = self.stats[name]
        active = a != 0 if self.active == "nonzero" else a > 0
        s.n_values += int(a.size)
        s.n_zero += int(xp.count_nonzero(a == 0))
        s.n_small += int(xp.count_nonzero(xp.abs(a) <= self.eps))
        rows = active.reshape(-1, a.shape[-1])
        counts = asnumpy(rows.sum(axis=0)).astype(np.int64)
        s.active_count = counts if s.active_count is None or s.active_count.shape != counts.shape else s.active_count + counts
        s.n_tokens += rows.shape[0]
        if a.ndim >= 2:
            seq = active.reshape(-1, a.shape[-2], a.shape[-1])  # (sequences, T, H)
            for w in self.windows:
                n_win = seq.shape[1] // w
                if n_win == 0:
                    continue
                used = seq[:, : n_win * w].reshape(seq.shape[0], n_win, w, -1).any(axis=2)
                s.window_sum[w] = s.window_sum.get(w, 0.0) + float(used.mean(axis=-1).sum())
                s.window_n[w] = s.window_n.get(w, 0) + seq.shape[0] * n_win

    def reset(self) -> None:
        """Forget every count (the hooks stay attached)."""
        self.stats = {name: SiteStats() for name in self.sites}

    def summary(self) -> dict:
        """``{site: {"zero_fraction", "small_fraction", "eps", "n_tokens", "n_neurons", "frequency" (H,),
        "dead" (indices), "dead_fraction", "window_usage" {w: fraction}}}`` for the sites that recorded something."""
        return {name: s.summary(self.eps) for name, s in self.stats.items() if s.n_tokens}

    def remove(self) -> None:
        """Detach the hooks; the counts stay readable."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "SparsityRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
