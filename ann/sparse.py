"""Sparse inference for ReLU networks: skip the weights of inactive neurons.

:class:`SparseLinear` computes ``x @ W.T + b`` with
:func:`neuro.kernels.gather_matmul`, reading only the columns of ``W``
(rows of ``W.T``) where ``x`` is nonzero. :class:`SparseFFN` runs a trained
feed-forward block ``linear2(act(linear1(x)))`` that way: ``linear1`` dense,
the ReLU by the fused :func:`neuro.kernels.sparse_relu` (counting the active
neurons), ``linear2`` by ``gather_matmul``. For the ReLU-gated GLU
(``a * relu(b)``), only the active rows of the ``a`` half of ``linear1`` are
computed too.

Both are inference-only modules: their weights are buffers (copies laid out
for the kernel), no gradient flows through them, and an input that requires
grad raises ``RuntimeError`` (detach it or use ``ann.no_grad()``).
"""

from __future__ import annotations


from neuro.backend import array_module
from neuro.kernels import gather_matmul, sparse_relu

from .nn.activation import Activation
from .nn.layers import Linear, Sequential
from .nn.module import Module
from .tensor import Tensor, is_grad_enabled

__all__ = ["SparseLinear", "SparseFFN"]

_FFN_ACTIVATIONS = ("relu", "shifted_relu", "reglu", "shifted_reglu")


def _input(x, features: int, name: str):
    """The array of ``x`` (Tensor or array) as ``(N, features)``, and the leading shape."""
    if isinstance(x, Tensor):
        if x.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{name} is inference-only: detach the input or run under ann.no_grad()")
        x = x.data
    if x.ndim == 0 or x.shape[-1] != features:
        raise ValueError(f"{name} expects x of shape (..., {features}), got {x.shape}")
    return x.reshape(-1, features), x.shape[:-1]


def _weights(linear: Linear):
    if not isinstance(linear, Linear):
        raise TypeError(f"expected an ann.nn.Linear, got {type(linear).__name__}")
    w = linear.weight.data
    return w, None if linear.bias is None else linear.bias.data


class SparseLinear(Module):
    """``y = x @ weight.T + bias`` reading only the weight columns where ``x`` is nonzero.

    ``weight`` ``(out_features, in_features)`` and ``bias`` ``(out_features,)`` (arrays, as in
    :class:`~ann.nn.Linear`); build one from a trained layer with :meth:`from_linear`.
    ``x`` ``(..., in_features)`` (Tensor or array) -> Tensor ``(..., out_features)``; the rows
    of a batch share one set of active inputs (the union).
    """

    def __init__(self, weight, bias=None):
        super().__init__()
        xp = array_module(weight)
        if weight.ndim != 2:
            raise ValueError(f"weight must have shape (out_features, in_features), got {weight.shape}")
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight_t", xp.ascontiguousarray(weight.T))
        if bias is not None and bias.shape != (self.out_features,):
            raise ValueError(f"bias must have shape ({self.out_features},), got {bias.shape}")
        if bias is None:
            self.bias = None
        else:
            self.register_buffer("bias", xp.array(bias, copy=True))

    @classmethod
    def from_linear(cls, linear: Linear) -> "SparseLinear":
        """The same layer as a trained :class:`~ann.nn.Linear` (weights copied)."""
        return cls(*_weights(linear))

    def forward(self, x):
        x2, lead = _input(x, self.in_features, "SparseLinear")
        y = gather_matmul(x2, self.weight_t)
        if self.bias is not None:
            y += self.bias
        return Tensor(y.reshape(lead + (self.out_features,)))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class SparseFFN(Module):
    """A trained feed-forward block ``linear2(act(linear1(x)))`` run with sparse inference.

    Parameters
    ----------
    linear1, linear2 : the trained :class:`~ann.nn.Linear` layers (weights are copied).
    activation : ``"relu"``, ``"shifted_relu"`` (``relu(z - shift)``), or the gated
        ``"reglu"`` / ``"shifted_reglu"`` (``a * relu(b [- shift])`` with ``a, b`` the
        halves of ``linear1``'s output, as :func:`ann.activations.reglu`).
    shift : the shift of the shifted variants.

    Notes
    -----
    ``x`` ``(..., d_model)`` -> Tensor ``(..., d_model_out)``. After each call
    ``last_active`` is the number of hidden neurons whose weights were read
    (active in some row), and ``last_density`` that number over the hidden width.
    """

    def __init__(self, linear1: Linear, linear2: Linear, activation: str = "relu", shift: float = 0.0):
        super().__init__()
        if activation not in _FFN_ACTIVATIONS:
            raise ValueError(f"activation must be one of {_FFN_ACTIVATIONS}, got {activation!r}")
        w1, b1 = _weights(linear1)
        w2, b2 = _weights(linear2)
        self.gated = activation.endswith("reglu")
        hidden = w1.shape[0] // 2 if self.gated else w1.shape[0]
        if self.gated and w1.shape[0] % 2:
            raise ValueError(f"a gated FFN needs an even linear1 width, got {w1.shape[0]}")
        if w2.shape[1] != hidden:
            raise ValueError(f"linear2 takes {w2.shape[1]} inputs but the activation gives {hidden}")
        xp = array_module(w1)
        self.activation = activation
        self.shift = float(shift) if activation.startswith("shifted") else 0.0
        self.hidden = hidden
        self.in_features = w1.shape[1]
        self.register_buffer("w1", xp.array(w1, copy=True))
        if b1 is None:
            self.b1 = None
        else:
            self.register_buffer("b1", xp.array(b1, copy=True))
        self.out = SparseLinear(w2, b2)
        self.last_active = None
        self.last_density = None

    @classmethod
    def from_block(cls, block) -> "SparseFFN":
        """From a :class:`~ann.nn.TransformerBlock` (its ``linear1``, ``act``, ``linear2``) or a
        ``Sequential(Linear, ReLU-like, Linear)``; the activation must be one of the ReLU kinds."""
        if isinstance(block, Sequential):
            if len(block) != 3:
                raise ValueError(f"expected Sequential(Linear, activation, Linear), got {len(block)} modules")
            linear1, act, linear2 = block[0], block[1], block[2]
        else:
            linear1, act, linear2 = block.linear1, block.act, block.linear2
        if not isinstance(act, Activation):
            raise TypeError(f"the activation must be an ann.nn.Activation, got {type(act).__name__}")
        shift = act.params.get("shift", 1.0 if act.name.startswith("shifted") else 0.0)
        if act.name == "relu" and act.params:
            raise ValueError(f"relu with options {act.params} has no sparse FFN")
        return cls(linear1, linear2, act.name, shift)

    def _hidden(self, x2):
        """The activation ``(N, hidden)`` (mostly zeros) computed from ``x2`` ``(N, in)``."""
        w1, b1, n = self.w1, self.b1, self.hidden
        if not self.gated:
            z = x2 @ w1.T
            if b1 is not None:
                z += b1
            if self.shift:
                z -= self.shift
            h, _ = sparse_relu(z)
            return h
        zb = x2 @ w1[n:].T
        if b1 is not None:
            zb += b1[n:]
        if self.shift:
            zb -= self.shift
        gate, _ = sparse_relu(zb)
        xp = array_module(gate)
        idx = xp.flatnonzero((gate != 0).any(axis=0))
        h = xp.zeros_like(gate)
        if idx.size:
            a = x2 @ w1[:n][idx].T  # only the active rows of the a-half
            if b1 is not None:
                a += b1[:n][idx]
            h[:, idx] = a * gate[:, idx]
        return h

    def forward(self, x):
        x2, lead = _input(x, self.in_features, "SparseFFN")
        h = self._hidden(x2)
        xp = array_module(h)
        self.last_active = int(xp.count_nonzero((h != 0).any(axis=0)))
        self.last_density = self.last_active / self.hidden
        y = self.out(h).data
        return Tensor(y.reshape(lead + (y.shape[-1],)))

    def extra_repr(self) -> str:
        shift = f", shift={self.shift}" if self.shift else ""
        return f"{self.in_features} -> {self.hidden} -> {self.out.out_features}, activation={self.activation!r}{shift}"
