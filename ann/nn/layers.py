"""Layers: Linear, Sequential, Dropout, Embedding, LayerNorm, RMSNorm and the MLP helper."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, resolve_dtype
from neuro.validation import check_int

from .. import functional as F
from .. import init
from ..generator import make_rng
from .activation import Activation
from .module import Module, Parameter

__all__ = ["Linear", "Sequential", "Dropout", "Embedding", "LayerNorm", "RMSNorm", "MLP", "Identity"]


def _empty(shape, dtype) -> Parameter:
    return Parameter(array_module().zeros(shape, dtype=resolve_dtype(dtype, ANN_DTYPE)))



class Identity(Module):
    """Returns its input."""

    def forward(self, x):
        return x


class Linear(Module):
    """``y = x @ weight.T + bias``: ``x`` ``(..., in_features)`` -> ``(..., out_features)``.

    Parameters ``weight`` ``(out_features, in_features)`` and ``bias`` ``(out_features,)``,
    initialized as PyTorch: ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None, seed=None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features")
        self.out_features = check_int(out_features, "out_features")
        rng = make_rng(seed)
        self.weight = _empty((self.out_features, self.in_features), dtype)
        # kaiming_uniform(a=sqrt(5)) as torch.nn.Linear: bound = 1 / sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), seed=rng)
        if bias:
            self.bias = _empty((self.out_features,), dtype)
            bound = 1.0 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound, seed=rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; named ``"0"``, ``"1"``, ... (so parameters are ``"0.weight"``, as PyTorch).

    ``Sequential(m0, m1, ...)`` or ``Sequential(OrderedDict(name=module, ...))``.
    Indexing, assignment, deletion, ``insert``, ``append``, ``extend`` and
    ``pop`` behave as ``torch.nn.Sequential``: an int index may be negative; a
    slice returns a new ``Sequential`` holding the same modules under their
    names; ``del`` and ``insert`` renumber the modules ``"0"``, ``"1"``, ...
    (PyTorch's result for numbered modules; PyTorch's ``insert`` assumes numbered names).
    (A slice of a subclass such as :class:`MLP` is a plain ``Sequential``,
    since the subclass's constructor takes sizes, not modules.)
    """

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self._check(m)
                self.add_module(name, m)
            return
        for m in modules:
            self.append(m)

    @staticmethod
    def _check(module) -> Module:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential holds Modules, got {type(module).__name__}")
        return module

    def _key(self, idx) -> str:
        """The name of the module at int position ``idx`` (``IndexError`` outside ``-len..len-1``)."""
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"Sequential indices must be integers or slices, got {type(idx).__name__}")
        size = len(self._modules)
        if not -size <= idx < size:
            raise IndexError(f"index {idx} is out of range")
        return list(self._modules)[int(idx) % size]

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), self._check(module))
        return self

    def extend(self, sequential) -> "Sequential":
        """Append every module of ``sequential`` (any iterable of Modules)."""
        for m in sequential:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> "Sequential":
        """Put ``module`` at position ``index`` (``-len..len``), shifting the later ones up by one."""
        self._check(module)
        n = len(self._modules)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -n <= index <= n:
            raise IndexError(f"Index out of range: {index}")
        index = int(index) + n if index < 0 else int(index)
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)
        return self

    def pop(self, key) -> Module:
        v = self[key]
        del self[key]
        return v

    def _renumber(self, items: list) -> None:
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]

    def __setitem__(self, idx, module: Module) -> None:
        setattr(self, self._key(idx), self._check(module))

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._key(idx)]
        for key in keys:
            del self._modules[key]
        self._renumber(list(self._modules.values()))

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class Dropout(Module):
    """Inverted dropout with probability ``p`` while training; the identity in eval mode.

    The mask stream comes from ``seed`` (int or Generator), drawn anew each call.
    """

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = make_rng(seed)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, seed=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Module):
    """A lookup table ``weight`` ``(num_embeddings, embedding_dim)`` initialized ``N(0, 1)`` (as PyTorch).

    Integer indices of any shape -> ``indices.shape + (embedding_dim,)``.
    ``padding_idx`` (as PyTorch): that row starts at zero and receives no gradient.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype: Any = None,
                 seed=None):
        super().__init__()
        self.num_embeddings = check_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_int(embedding_dim, "embedding_dim")
        self.padding_idx = None if padding_idx is None else F._padding_row(padding_idx, self.num_embeddings)
        self.weight = _empty((self.num_embeddings, self.embedding_dim), dtype)
        init.normal_(self.weight, 0.0, 1.0, seed=seed)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices):
        return F.embedding(indices, self.weight, padding_idx=self.padding_idx)


def _shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    shape = tuple(int(n) for n in normalized_shape)
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"normalized_shape must be a positive int or a tuple of them, got {normalized_shape!r}")
    return shape


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` axes; ``weight`` (ones) and ``bias`` (zeros) as PyTorch."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True, dtype: Any = None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps = float(eps)
        if elementwise_affine:
            self.weight = init.ones_(_empty(self.normalized_shape, dtype))
            if bias:
                self.bias = _empty(self.normalized_shape, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(Module):
    """Root-mean-square normalization over the trailing axes with a ``weight`` (ones), as ``torch.nn.RMSNorm``."""

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True, dtype: Any = None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps = eps
        if elementwise_affine:
            self.weight = init.ones_(_empty(self.normalized_shape, dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


class MLP(Sequential):
    """A multilayer perceptron: ``Linear -> activation [-> Dropout] -> ... -> Linear``.

    ``sizes = (in, hidden..., out)``; ``activation`` is a registry name (see
    :func:`ann.activations.get`) with keyword ``activation_params``. Layers are named as a PyTorch ``nn.Sequential``
    built the same way (``"0.weight"``, ``"2.weight"``, ...). ``seed`` seeds every layer.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", dropout: float = 0.0, bias: bool = True,
                 dtype: Any = None, seed=None, activation_params: dict | None = None):
        super().__init__()
        sizes = [check_int(s, "sizes[i]") for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP sizes needs at least (in, out), got {sizes}")
        rng = make_rng(seed)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.append(Linear(a, b, bias=bias, dtype=dtype, seed=rng))
            if i < len(sizes) - 2:
                self.append(Activation(activation, **(activation_params or {})))
                if dropout > 0:
                    self.append(Dropout(dropout, seed=rng))
