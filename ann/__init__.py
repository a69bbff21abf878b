"""ann: reverse-mode autograd on NumPy/CuPy arrays, layers, losses, optimizers and training.

PyTorch-like API::

    import ann
    import ann.functional as F
    x = ann.Tensor([[1.0, -2.0]], requires_grad=True)
    y = F.relu(x).sum()
    y.backward()            # x.grad == [[1., 0.]]

Sub-modules: :mod:`ann.functional` (activations, losses, layer functions),
:mod:`ann.activations` (the activation registry), :mod:`ann.losses`,
:mod:`ann.nn` (Module and layers), :mod:`ann.init`, :mod:`ann.optim`,
:mod:`ann.train`, :mod:`ann.io`, :mod:`ann.scaling` (compute-optimal scaling-law fits), :mod:`ann.energy` (energy-based models);
:class:`ModuleComponent` runs any module inside a :class:`neuro.Simulator`.
"""

from neuro.version import __version__
from . import activations, functional, init, io, losses, nn, optim, scaling, text, train, warnings
from . import energy
from .warnings import AnnWarning, NonFiniteLossWarning
from .component import ModuleComponent
from .gradcheck import GradcheckError, gradcheck
from .tensor import (
    Tensor,
    as_tensor,
    concatenate,
    enable_grad,
    erf,
    exp,
    is_grad_enabled,
    log,
    matmul,
    maximum,
    minimum,
    no_grad,
    ones,
    sigmoid,
    split,
    sqrt,
    stack,
    tanh,
    where,
    zeros,
)

__all__ = [
    "ModuleComponent",
    "Tensor",
    "as_tensor",
    "zeros",
    "ones",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "concatenate",
    "stack",
    "split",
    "where",
    "maximum",
    "minimum",
    "matmul",
    "exp",
    "log",
    "sqrt",
    "tanh",
    "sigmoid",
    "erf",
    "gradcheck",
    "GradcheckError",
    "AnnWarning",
    "NonFiniteLossWarning",
    "warnings",
    "activations",
    "energy",
    "functional",
    "init",
    "io",
    "losses",
    "nn",
    "optim",
    "scaling",
    "text",
    "train",
]
