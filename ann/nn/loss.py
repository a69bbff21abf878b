"""Loss modules with PyTorch's names, constructor arguments and defaults (``nn.CrossEntropyLoss``, ...).

Each holds its settings and calls the function of the same meaning in :mod:`ann.losses`:
``loss = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target)``. Class weights
(``weight``, ``pos_weight``) are buffers, so they appear in the state dict and follow
:meth:`Module.to`, as in PyTorch. PyTorch's deprecated ``size_average`` / ``reduce`` arguments
are accepted in their places and mapped to ``reduction`` as PyTorch maps them, with a warning.
The energy-based losses have their modules in :mod:`ann.energy`.
"""

from __future__ import annotations

import warnings

from .. import losses as _L
from ..tensor import as_tensor
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"]


def _legacy_reduction(size_average, reduce) -> str:
    """PyTorch's ``_Reduction.legacy_get_string``: ``reduce=False`` -> none, else mean or sum."""
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='{}' instead.".format(
        "none" if reduce is False else "mean" if size_average is not False else "sum"), UserWarning, stacklevel=3)
    if reduce is False:
        return "none"
    return "mean" if size_average is not False else "sum"


class _Loss(Module):
    """``reduction`` (``"mean"``, ``"sum"`` or ``"none"``) and the legacy arguments."""

    _allowed = ("mean", "sum", "none")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        _L._check_reduction(reduction, self._allowed)
        self.reduction = reduction

    def _buffer(self, name: str, value) -> None:
        """A class-weight buffer (in the state dict), or a plain None attribute."""
        if value is None:
            object.__setattr__(self, name, None)
        else:
            self.register_buffer(name, as_tensor(value).data)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """:func:`ann.losses.cross_entropy` as a module: logits ``(N, C)`` or ``(N, C, d1, ...)``, integer
    targets ``(N, ...)`` or class probabilities shaped as the logits."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return _L.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                                reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """:func:`ann.losses.nll_loss` as a module: log-probabilities ``(N, C, ...)``, integer targets ``(N, ...)``."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return _L.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """:func:`ann.losses.mse_loss` as a module (input and target of one shape)."""

    def forward(self, input, target):
        return _L.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """:func:`ann.losses.l1_loss` as a module (input and target of one shape)."""

    def forward(self, input, target):
        return _L.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """:func:`ann.losses.huber_loss` as a module, ``delta > 0`` the switch from quadratic to linear."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        if not delta > 0:
            raise ValueError(f"delta must be > 0, got {delta!r}")
        self.delta = delta

    def forward(self, input, target):
        return _L.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    """:func:`ann.losses.binary_cross_entropy` as a module: probabilities and targets of one shape."""

    def forward(self, input, target):
        return _L.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """:func:`ann.losses.binary_cross_entropy_with_logits` as a module; ``pos_weight`` weighs the positives."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)
        self._buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return _L.binary_cross_entropy_with_logits(input, target, weight=self.weight, pos_weight=self.pos_weight,
                                                   reduction=self.reduction)


class KLDivLoss(_Loss):
    """:func:`ann.losses.kl_div` as a module: log-probabilities ``input``, ``target`` probabilities (or
    log-probabilities with ``log_target``); ``reduction="batchmean"`` gives the true KL divergence."""

    _allowed = ("mean", "sum", "none", "batchmean")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return _L.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
