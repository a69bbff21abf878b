"""Activation modules: :class:`Activation` (any registry name) and PyTorch-named classes.

Each class wraps the function of the same name in :mod:`ann.activations`
(constructor keywords are its parameters; ``dim`` is accepted as PyTorch's
name for ``axis``). :class:`PReLU` holds its learnable slope as ``weight``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype

from .. import activations as A
from .module import Module, Parameter

__all__ = [
    "Activation", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Hardswish",
    "Mish", "Sigmoid", "Hardsigmoid", "Tanh", "Softplus", "Softsign", "Exponential", "Softmax", "LogSoftmax",
    "GLU", "SwiGLU", "GeGLU", "ReGLU", "ShiftedReLU", "SparseReLU", "ShiftedReGLU",
]


class Activation(Module):
    """The registered activation ``name`` with keyword ``params`` (see :func:`ann.activations.get`)."""

    def __init__(self, name: str, **params: Any):
        super().__init__()
        if "dim" in params:
            params["axis"] = params.pop("dim")
        self.name = A.spec(name).name
        self.params = params
        self.fn = A.get(name, **params)

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.name)] + [f"{k}={v!r}" for k, v in self.params.items()])


def _named(class_name: str, registry_name: str, doc: str):
    def __init__(self, **params):
        Activation.__init__(self, registry_name, **params)

    return type(class_name, (Activation,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


ReLU = _named("ReLU", "relu", "``relu`` (Keras options: negative_slope, max_value, threshold).")
ReLU6 = _named("ReLU6", "relu6", "``min(max(x, 0), 6)``.")
ELU = _named("ELU", "elu", "``elu(alpha=1.0)``.")
SELU = _named("SELU", "selu", "Scaled ELU.")
CELU = _named("CELU", "celu", "``celu(alpha=1.0)``.")
GELU = _named("GELU", "gelu", "``gelu(approximate='none' | 'tanh')``.")
SiLU = _named("SiLU", "silu", "``x * sigmoid(x)``.")
Hardswish = _named("Hardswish", "hard_silu", "``x * relu6(x + 3) / 6``.")
Mish = _named("Mish", "mish", "``x * tanh(softplus(x))``.")
Sigmoid = _named("Sigmoid", "sigmoid", "Logistic sigmoid.")
Hardsigmoid = _named("Hardsigmoid", "hard_sigmoid", "``relu6(x + 3) / 6``.")
Tanh = _named("Tanh", "tanh", "Hyperbolic tangent.")
Softplus = _named("Softplus", "softplus", "``softplus(beta=1, threshold=20)``.")
Softsign = _named("Softsign", "softsign", "``x / (1 + |x|)``.")
Exponential = _named("Exponential", "exponential", "``exp(x)``.")
Softmax = _named("Softmax", "softmax", "Softmax along ``dim`` (default -1).")
LogSoftmax = _named("LogSoftmax", "log_softmax", "Log-softmax along ``dim`` (default -1).")
GLU = _named("GLU", "glu", "Gated linear unit along ``dim`` (default -1).")
SwiGLU = _named("SwiGLU", "swiglu", "``a * silu(b)`` over the halves along ``dim``.")
GeGLU = _named("GeGLU", "geglu", "``a * gelu(b)`` over the halves along ``dim``.")
ReGLU = _named("ReGLU", "reglu", "``a * relu(b)`` over the halves along ``dim``.")
ShiftedReLU = _named("ShiftedReLU", "shifted_relu", "``relu(x - shift)``.")


class LeakyReLU(Activation):
    """``leaky_relu(negative_slope=0.01)``."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__("leaky_relu", negative_slope=negative_slope)


class PReLU(Module):
    """Parametric ReLU with a learnable ``weight`` of shape ``(num_parameters,)`` (channel axis 1), as PyTorch."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: Any = None):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer)) or num_parameters < 1:
            raise ValueError(f"num_parameters must be a positive int, got {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.weight = Parameter(array_module().full((self.num_parameters,), init, dtype=resolve_dtype(dtype, ANN_DTYPE)))

    def forward(self, x):
        return A.prelu(x, self.weight)


class SparseReLU(Module):
    """ReLU by the fused kernel (:func:`ann.activations.sparse_relu`); ``nnz`` holds the last call's nonzero count.

    Same values and gradient as :class:`ReLU` (``threshold`` as Keras's, default 0).
    ``nnz`` is ``None`` before the first call.
    """

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = float(threshold)
        self.nnz = None

    def forward(self, x):
        y, self.nnz = A.sparse_relu(x, self.threshold)
        return y

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}" if self.threshold else ""


class ShiftedReGLU(Activation):
    """``a * relu(b - shift)`` over the halves ``a, b`` of the last axis: the shifted-ReLU gate of a GLU.

    What :func:`ann.sparsity.relufy` puts in place of a gated activation with
    ``activation="shifted_relu"``.
    """

    def __init__(self, shift: float = 1.0):
        Module.__init__(self)
        self.name = "shifted_reglu"
        self.params = {"shift": float(shift)}
        self.fn = partial(A._gated, act=partial(A.shifted_relu, shift=float(shift)), axis=-1, name="shifted_reglu")
