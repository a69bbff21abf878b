"""Activation functions and their registry.

Every function takes a :class:`~ann.tensor.Tensor` (or an array) and returns a
Tensor of the same shape (the gated ones, ``glu``/``swiglu``/``geglu``/``reglu``,
halve ``axis``). Derivatives at kinks follow PyTorch: ReLU-type kinks at 0
have derivative 0 (``relu``, ``relu6``, ``hard_sigmoid`` at the ends of its
linear piece), ``leaky_relu``/``prelu`` take the negative slope at 0, the
ELU family takes its negative branch at 0, ``hard_silu`` uses PyTorch's
``hardswish_backward`` (``x/3 + 1/2`` on the open ``(-3, 3)``, 0 at -3, 1 at 3).

The registry lets studies sweep activations by name::

    from ann import activations
    f = activations.get("leaky_relu", negative_slope=0.1)
    y = f(x)
    activations.names()          # every registered name
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable



from .erf_kernel import gelu_array, gelu_backward_array
from .softmax_kernel import online_softmax_tile
from .tensor import Tensor, _operand, _xp, _special, exp, make_op, resolve_dim, sigmoid, split, tanh, where

__all__ = [
    "relu", "sparse_relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu", "swish", "hard_silu",
    "hard_swish", "mish", "hard_sigmoid", "sigmoid", "tanh", "softplus", "softsign", "exponential", "linear",
    "softmax", "log_softmax", "glu", "swiglu", "geglu", "reglu", "shifted_relu",
    "ActivationSpec", "get", "names", "spec", "register",
    "SELU_ALPHA", "SELU_SCALE",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _elementwise(x, forward: Callable, derivative: Callable, name: str) -> Tensor:
    """A primitive ``y = forward(xp, x)`` with ``dy/dx = derivative(xp, x, y)`` (same dtype as x)."""
    x = _operand(x)
    xp = _xp(x.data)
    xd = x.data
    out = forward(xp, xd).astype(xd.dtype, copy=False)

    def backward(g):
        return (g * derivative(xp, xd, out).astype(g.dtype, copy=False),)

    return make_op(out, (x,), backward, name)


# ------------------------------------------------------------- ReLU family


def relu(x, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> Tensor:
    """Rectified linear unit with Keras's options.

    ``f(x) = min(x, max_value)`` for ``x > threshold`` and
    ``negative_slope * (x - threshold)`` otherwise. Derivative: 1 on
    ``threshold < x < max_value``, 0 at and above ``max_value``,
    ``negative_slope`` at and below ``threshold`` (so plain ``relu'(0) = 0``, as PyTorch).
    """
    if max_value is not None and max_value < 0:
        raise ValueError(f"max_value must be >= 0 or None, got {max_value}")
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return _elementwise(x, lambda xp, v: xp.maximum(v, 0), lambda xp, v, y: v > 0, "relu")

    def forward(xp, v):
        pos = v if max_value is None else xp.minimum(v, max_value)
        return xp.where(v > threshold, pos, negative_slope * (v - threshold))

    def derivative(xp, v, y):
        above = v > threshold
        inside = above if max_value is None else above & (v < max_value)
        one, slope = v.dtype.type(1), v.dtype.type(negative_slope)  # typed: no float64 temporaries
        return xp.where(inside, one, xp.where(above, v.dtype.type(0), slope))

    return _elementwise(x, forward, derivative, "relu")


def sparse_relu(x, threshold: float = 0.0) -> tuple[Tensor, int]:
    """ReLU and its number of nonzero outputs in one fused pass (:func:`neuro.kernels.sparse_relu`).

    Returns ``(y, nnz)``: ``y`` equals ``relu(x, threshold=threshold)`` in
    value and gradient (1 where ``x > threshold``, else 0; so 0 at the kink,
    as PyTorch), ``nnz`` is the Python int ``count_nonzero(y)``. ``x`` is a
    floating Tensor or array of any shape (NumPy or CuPy).
    """
    from neuro.kernels import sparse_relu as fused

    x = _operand(x)
    xd = x.data
    out, nnz = fused(xd, threshold)

    def backward(g):
        return (g * (xd > threshold).astype(g.dtype, copy=False),)

    return make_op(out, (x,), backward, "sparse_relu"), nnz


def relu6(x) -> Tensor:
    """``min(max(x, 0), 6)``; derivative 0 at 0 and at 6 (as PyTorch's hardtanh backward)."""
    return _elementwise(
        x, lambda xp, v: xp.clip(v, 0, 6), lambda xp, v, y: (v > 0) & (v < 6), "relu6"
    )


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """``x`` for ``x > 0`` else ``negative_slope * x``; derivative at 0 is ``negative_slope`` (as PyTorch)."""
    return _elementwise(
        x,
        lambda xp, v: xp.where(v > 0, v, v * negative_slope),
        lambda xp, v, y: xp.where(v > 0, v.dtype.type(1), v.dtype.type(negative_slope)),
        "leaky_relu",
    )


def shifted_relu(x, shift: float = 1.0) -> Tensor:
    """``relu(x - shift)``: a ReLU whose kink sits at ``shift`` (sparser for ``shift > 0``)."""
    return _elementwise(x, lambda xp, v: xp.maximum(v - shift, 0), lambda xp, v, y: v > shift, "shifted_relu")


def prelu(x, weight=0.25) -> Tensor:
    """Parametric ReLU: ``x`` for ``x > 0`` else ``weight * x``.

    ``weight`` is a scalar, a ``(1,)`` or a ``(C,)`` tensor (one slope per channel, the
    channel axis being axis 1 of ``x`` when ``x.ndim >= 2``, as PyTorch). Learnable: gradients
    reach ``weight`` when it requires grad. Derivative at 0 is ``weight``.
    """
    x = _operand(x)
    w = _operand(weight, x)
    if w.ndim > 1 or (w.ndim == 1 and w.shape[0] != 1 and (x.ndim < 2 or x.shape[1] != w.shape[0])):
        raise ValueError(
            f"prelu weight must be a scalar, shape (1,) or (C,) with C = x.shape[1]; got weight {w.shape}, x {x.shape}"
        )
    if w.ndim == 1 and w.shape[0] != 1 and x.ndim > 2:
        w = w.reshape((w.shape[0],) + (1,) * (x.ndim - 2))
    return where(x.data > 0, x, w * x)


def _elu_core(x, alpha: float, scale: float, input_scale: float, name: str) -> Tensor:
    """``scale * x`` for ``x > 0`` else ``scale * alpha * (exp(input_scale * x) - 1)`` (PyTorch's elu kernel)."""

    def forward(xp, v):
        return xp.where(v > 0, scale * v, (scale * alpha) * xp.expm1(xp.minimum(v, 0) * input_scale))

    def derivative(xp, v, y):
        return xp.where(v > 0, scale, (scale * alpha * input_scale) * xp.exp(xp.minimum(v, 0) * input_scale))

    return _elementwise(x, forward, derivative, name)


def elu(x, alpha: float = 1.0) -> Tensor:
    """Exponential linear unit: ``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return _elu_core(x, alpha, 1.0, 1.0, "elu")


def selu(x) -> Tensor:
    """Scaled ELU with the self-normalizing constants of Klambauer et al. (2017)."""
    return _elu_core(x, SELU_ALPHA, SELU_SCALE, 1.0, "selu")


def celu(x, alpha: float = 1.0) -> Tensor:
    """Continuously differentiable ELU: ``x`` for ``x > 0`` else ``alpha * (exp(x / alpha) - 1)``."""
    if alpha == 0:
        raise ValueError("celu alpha must be nonzero")
    return _elu_core(x, alpha, 1.0, 1.0 / alpha, "celu")


# ---------------------------------------------------------- smooth ones

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x * Phi(x)``.

    ``approximate="none"`` uses ``erf`` (one fused op, the ``gelu`` / ``gelu_backward``
    kernels of :mod:`ann.erf_kernel`); ``"tanh"`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (as PyTorch).
    """
    x = _operand(x)
    if approximate == "none":
        return make_op(gelu_array(x.data), (x,), lambda g: (gelu_backward_array(x.data, g),), "gelu")
    if approximate == "tanh":
        return 0.5 * x * (1.0 + tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x) -> Tensor:
    """Sigmoid-weighted linear unit (swish with beta 1): ``x * sigmoid(x)``."""
    def forward(xp, v):
        return v * _special(xp).expit(v)

    def derivative(xp, v, y):
        s = _special(xp).expit(v)
        return s * (1 + v * (1 - s))

    return _elementwise(x, forward, derivative, "silu")


def swish(x, beta: float = 1.0) -> Tensor:
    """``x * sigmoid(beta * x)`` (``beta=1`` is :func:`silu`)."""
    if beta == 1.0:
        return silu(x)
    x = _operand(x)
    return x * sigmoid(beta * x)


def hard_sigmoid(x) -> Tensor:
    """``relu6(x + 3) / 6``; derivative ``1/6`` on the open interval ``(-3, 3)`` (as PyTorch)."""
    return _elementwise(
        x,
        lambda xp, v: xp.clip(v + 3, 0, 6) / 6,
        lambda xp, v, y: ((v > -3) & (v < 3)) / 6.0,
        "hard_sigmoid",
    )


def hard_silu(x) -> Tensor:
    """Hard swish ``x * relu6(x + 3) / 6``, with PyTorch's derivative (``x/3 + 1/2`` on ``(-3, 3)``, 0 at -3, 1 at 3)."""
    return _elementwise(
        x,
        lambda xp, v: v * xp.clip(v + 3, 0, 6) / 6,
        lambda xp, v, y: xp.where(v <= -3, 0.0, xp.where(v < 3, v / 3 + 0.5, 1.0)),
        "hard_silu",
    )


hard_swish = hard_silu


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold`` (as PyTorch)."""
    if beta <= 0:
        raise ValueError(f"softplus beta must be > 0, got {beta}")

    def forward(xp, v):
        bx = v * beta
        return xp.where(bx > threshold, v, xp.logaddexp(0, bx) / beta)

    def derivative(xp, v, y):
        bx = v * beta
        return xp.where(bx > threshold, 1.0, _special(xp).expit(bx))

    return _elementwise(x, forward, derivative, "softplus")


def mish(x) -> Tensor:
    """``x * tanh(softplus(x))`` (Misra 2019)."""
    x = _operand(x)
    return x * tanh(softplus(x))


def softsign(x) -> Tensor:
    """``x / (1 + |x|)``."""
    return _elementwise(
        x,
        lambda xp, v: v / (1 + xp.abs(v)),
        lambda xp, v, y: 1.0 / (1 + xp.abs(v)) ** 2,
        "softsign",
    )


def exponential(x) -> Tensor:
    """``exp(x)`` (Keras's ``exponential`` activation)."""
    return exp(x)


def linear(x) -> Tensor:
    """The identity (Keras's ``linear`` activation)."""
    return _operand(x)


# ------------------------------------------------------------ normalizing


def softmax_last_(s):
    """Softmax along the last axis of the C-contiguous array ``s``, in place; returns ``s``.

    The online-softmax kernel on whole rows (compiled for float32): ``exp(s - max)`` in place and the
    row sums, then one division.
    """
    xp = _xp(s)
    total = xp.zeros(s.shape[:-1], s.dtype)
    online_softmax_tile(s, xp.full(s.shape[:-1], -xp.inf, s.dtype), total)
    s /= total[..., None]
    return s


def softmax_backward_array(out, g, axis=-1):
    """The softmax input gradient ``out * (g - sum(g * out, axis))``: ``out`` the softmax output, ``g`` its gradient."""
    gx = g * out
    s = gx.sum(axis=axis, keepdims=True)
    _xp(gx).subtract(g, s, out=gx)
    gx *= out
    return gx


def softmax(x, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``exp(x - max) / sum(exp(x - max))`` along ``dim`` (``axis``: NumPy's name, an alias).

    Deliberate difference: no ``dim`` means the last axis (PyTorch's implicit choice is deprecated).
    """
    axis = resolve_dim(axis, dim, -1)
    x = _operand(x)
    xp = _xp(x.data)
    if axis in (-1, x.ndim - 1) and x.ndim:
        out = softmax_last_(xp.array(x.data, order="C", copy=True))
    else:
        out = x.data - x.data.max(axis=axis, keepdims=True)  # one array, every later pass in place
        xp.exp(out, out=out)
        out /= out.sum(axis=axis, keepdims=True)

    def backward(g):
        return (softmax_backward_array(out, g, axis),)

    return make_op(out, (x,), backward, "softmax")


def log_softmax(x, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``x - logsumexp(x)`` along ``dim`` (``axis`` an alias; default the last), stable for huge logits and ``-inf``."""
    axis = resolve_dim(axis, dim, -1)
    x = _operand(x)
    xp = _xp(x.data)
    m = x.data.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    z = x.data - m
    out = z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)

    return make_op(out, (x,), backward, "log_softmax")


# ----------------------------------------------------------------- gated


def _gated(x, act: Callable, axis: int, name: str) -> Tensor:
    x = _operand(x)
    n = x.shape[axis]
    if n % 2:
        raise ValueError(f"{name} needs an even size along axis {axis}, got {n} (shape {x.shape})")
    a, b = split(x, 2, axis=axis)
    return a * act(b)


def glu(x, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """Gated linear unit: split ``x`` in halves ``a, b`` along ``axis``; ``a * sigmoid(b)`` (as PyTorch)."""
    axis = resolve_dim(axis, None if dim == -1 else dim, -1)
    return _gated(x, sigmoid, axis, "glu")


def swiglu(x, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """``a * silu(b)`` with ``a, b`` the halves of ``x`` along ``axis`` (Shazeer 2020)."""
    axis = resolve_dim(axis, None if dim == -1 else dim, -1)
    return _gated(x, silu, axis, "swiglu")


def geglu(x, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """``a * gelu(b)`` with ``a, b`` the halves of ``x`` along ``axis``."""
    axis = resolve_dim(axis, None if dim == -1 else dim, -1)
    return _gated(x, gelu, axis, "geglu")


def reglu(x, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """``a * relu(b)`` with ``a, b`` the halves of ``x`` along ``axis``."""
    axis = resolve_dim(axis, None if dim == -1 else dim, -1)
    return _gated(x, relu, axis, "reglu")


# --------------------------------------------------------------- registry


@dataclass(frozen=True)
class ActivationSpec:
    """A registered activation: its function, kind and default keyword parameters.

    ``kind`` is ``"elementwise"`` (same shape out), ``"normalizing"`` (softmax-like,
    along an axis) or ``"gated"`` (halves an axis).
    """

    name: str
    fn: Callable
    kind: str = "elementwise"
    params: dict = field(default_factory=dict)
    aliases: tuple = ()


_REGISTRY: dict[str, ActivationSpec] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, fn: Callable, kind: str = "elementwise", params: dict | None = None, aliases: tuple = ()) -> None:
    """Register activation ``fn`` under ``name`` (and ``aliases``)."""
    if kind not in ("elementwise", "normalizing", "gated"):
        raise ValueError(f"kind must be 'elementwise', 'normalizing' or 'gated', got {kind!r}")
    if name in _REGISTRY or name in _ALIASES:
        raise ValueError(f"activation {name!r} is already registered")
    _REGISTRY[name] = ActivationSpec(name, fn, kind, dict(params or {}), tuple(aliases))
    for a in aliases:
        _ALIASES[a] = name


def names() -> list:
    """The canonical names of every registered activation (aliases left out)."""
    return list(_REGISTRY)


def spec(name: str) -> ActivationSpec:
    """The :class:`ActivationSpec` for ``name`` (or an alias); ``ValueError`` listing the known names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a str, got {type(name).__name__}")
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def get(name: str, **params: Any) -> Callable:
    """The activation ``name`` as a one-argument function, with ``params`` bound.

    Unknown names raise ``ValueError`` listing the known ones; unknown
    parameters raise ``TypeError`` when the function is built.
    """
    s = spec(name)
    merged = {**s.params, **params}
    if not merged:
        return s.fn
    import inspect

    accepted = inspect.signature(s.fn).parameters
    for key in merged:
        if key not in accepted or key == "x":
            raise TypeError(f"activation {s.name!r} takes no parameter {key!r}; it takes {[k for k in accepted if k != 'x']}")
    return partial(s.fn, **merged)


for _name, _fn, _kind, _aliases in [
    ("relu", relu, "elementwise", ()),
    ("relu6", relu6, "elementwise", ()),
    ("leaky_relu", leaky_relu, "elementwise", ()),
    ("prelu", prelu, "elementwise", ()),
    ("elu", elu, "elementwise", ()),
    ("selu", selu, "elementwise", ()),
    ("celu", celu, "elementwise", ()),
    ("gelu", gelu, "elementwise", ()),
    ("silu", silu, "elementwise", ("swish",)),
    ("hard_silu", hard_silu, "elementwise", ("hard_swish", "hardswish")),
    ("mish", mish, "elementwise", ()),
    ("sigmoid", sigmoid, "elementwise", ()),
    ("hard_sigmoid", hard_sigmoid, "elementwise", ("hardsigmoid",)),
    ("tanh", tanh, "elementwise", ()),
    ("softplus", softplus, "elementwise", ()),
    ("softsign", softsign, "elementwise", ()),
    ("exponential", exponential, "elementwise", ()),
    ("linear", linear, "elementwise", ("identity",)),
    ("shifted_relu", shifted_relu, "elementwise", ()),
    ("softmax", softmax, "normalizing", ()),
    ("log_softmax", log_softmax, "normalizing", ()),
    ("glu", glu, "gated", ()),
    ("swiglu", swiglu, "gated", ()),
    ("geglu", geglu, "gated", ()),
    ("reglu", reglu, "gated", ()),
]:
    register(_name, _fn, _kind, aliases=_aliases)
register("gelu_tanh", gelu, "elementwise", params={"approximate": "tanh"})
del _name, _fn, _kind, _aliases
