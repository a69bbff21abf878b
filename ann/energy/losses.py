"""The energy-based losses of :mod:`ann.losses` as :class:`~ann.nn.Module` classes (PyTorch style).

Each class holds its hyper-parameters and ``reduction`` and calls the function
of the same name: ``EnergyHingeLoss(margin=1.0)(energies, target)`` equals
``ann.losses.energy_hinge_loss(energies, target, margin=1.0)``. ``energies``
``(N, C)``: one energy per answer, low for compatible answers (LeCun et al.
2006); ``target``: integer classes ``(N,)``.
"""

from __future__ import annotations

from neuro.validation import check_nonneg, check_positive

from .. import losses as _L
from ..losses import (
    energy_hinge_loss,
    energy_log_loss,
    energy_loss,
    energy_nll_loss,
    energy_perceptron_loss,
    energy_square_exp_loss,
    energy_square_square_loss,
)
from ..nn.module import Module

__all__ = [
    "energy_loss", "energy_perceptron_loss", "energy_hinge_loss", "energy_log_loss",
    "energy_square_square_loss", "energy_square_exp_loss", "energy_nll_loss",
    "EnergyLoss", "EnergyPerceptronLoss", "EnergyHingeLoss", "EnergyLogLoss",
    "EnergySquareSquareLoss", "EnergySquareExpLoss", "EnergyNLLLoss",
]


class _EnergyLossModule(Module):
    """``forward(energies, target)`` calls ``_fn`` with the stored keyword arguments."""

    _fn = None
    _params: tuple = ()

    def __init__(self, reduction: str = "mean", **params):
        super().__init__()
        _L._check_reduction(reduction)
        self.reduction = reduction
        for name, value in params.items():
            setattr(self, name, value)

    def forward(self, energies, target):
        kw = {name: getattr(self, name) for name in self._params}
        return type(self)._fn(energies, target, reduction=self.reduction, **kw)

    def extra_repr(self) -> str:
        return ", ".join([f"{n}={getattr(self, n)}" for n in self._params] + [f"reduction={self.reduction!r}"])


class EnergyLoss(_EnergyLossModule):
    """:func:`~ann.losses.energy_loss` as a Module: ``E_y``."""

    _fn = staticmethod(energy_loss)

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)


class EnergyPerceptronLoss(_EnergyLossModule):
    """:func:`~ann.losses.energy_perceptron_loss` as a Module: ``E_y - min E``."""

    _fn = staticmethod(energy_perceptron_loss)

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)


class EnergyHingeLoss(_EnergyLossModule):
    """:func:`~ann.losses.energy_hinge_loss` as a Module: ``max(0, margin + E_y - E_bar)``."""

    _fn = staticmethod(energy_hinge_loss)
    _params = ("margin",)

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction, margin=check_nonneg(margin, "margin"))


class EnergyLogLoss(_EnergyLossModule):
    """:func:`~ann.losses.energy_log_loss` as a Module: ``log(1 + exp(E_y - E_bar))``."""

    _fn = staticmethod(energy_log_loss)

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)


class EnergySquareSquareLoss(_EnergyLossModule):
    """:func:`~ann.losses.energy_square_square_loss` as a Module: ``E_y**2 + max(0, margin - E_bar)**2``."""

    _fn = staticmethod(energy_square_square_loss)
    _params = ("margin",)

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction, margin=check_nonneg(margin, "margin"))


class EnergySquareExpLoss(_EnergyLossModule):
    """:func:`~ann.losses.energy_square_exp_loss` as a Module: ``E_y**2 + gamma exp(-E_bar)``."""

    _fn = staticmethod(energy_square_exp_loss)
    _params = ("gamma",)

    def __init__(self, gamma: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction, gamma=check_positive(gamma, "gamma"))


class EnergyNLLLoss(_EnergyLossModule):
    """:func:`~ann.losses.energy_nll_loss` as a Module: ``E_y + (1/beta) log sum exp(-beta E)``."""

    _fn = staticmethod(energy_nll_loss)
    _params = ("beta",)

    def __init__(self, beta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction, beta=check_positive(beta, "beta"))
