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
:mod:`ann.train`, :mod:`ann.io`, :mod:`ann.generator` (``manual_seed``), :mod:`ann.scaling` (compute-optimal
scaling-law fits), :mod:`ann.energy` (energy-based models), :mod:`ann.sparsity` (activation sparsity: recorder
and relufication), :mod:`ann.sparse` (sparse inference); :class:`ModuleComponent` runs any module inside a
:class:`neuro.Simulator`.
"""

from neuro.version import __version__
from . import activations, functional, init, io, losses, nn, optim, scaling, sparse, sparsity, text, train, warnings
from . import energy
from .warnings import AnnWarning, NonFiniteLossWarning
from .component import ModuleComponent
from .generator import default_generator, initial_seed, manual_seed
from .gradcheck import GradcheckError, gradcheck
from .tensor import (
    Tensor,
    Size,
    ValuesIndices,
    as_tensor,
    cat,
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
    "manual_seed",
    "initial_seed",
    "default_generator",
    "ModuleComponent",
    "Tensor",
    "as_tensor",
    "zeros",
    "ones",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "concatenate",
    "cat",
    "Size",
    "ValuesIndices",
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
    "sparse",
    "sparsity",
    "text",
    "train",
]
