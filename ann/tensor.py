"""Reverse-mode automatic differentiation on NumPy / CuPy arrays.

A :class:`Tensor` wraps an array (``.data``: a ``numpy.ndarray`` or a
``cupy.ndarray``; the module is found with :func:`neuro.backend.array_module`,
so the same graph code runs on CPU and GPU). Operations on tensors that
require gradients record a node holding the parents and a closure mapping the
output gradient to the parents' gradients. :meth:`Tensor.backward` walks the
graph in reverse topological order, sums gradients reaching a node along
several paths, reduces broadcast gradients back to each input's shape, and
accumulates (``+=``) into the ``.grad`` of leaf tensors, as PyTorch does.
The graph is freed after ``backward()`` unless ``retain_graph=True``.

Only a small set of primitives carry hand-written gradients (arithmetic,
``matmul``, ``pow``, ``exp``, ``log``, ``sqrt``, ``abs``, ``clip``, ``where``,
``maximum``, ``sum``, ``max``/``min``, shape ops, indexing, ``concatenate``,
``erf``, ``tanh``, ``sigmoid``, and a few fused ones in
:mod:`ann.functional`); everything else is composed from them.

dtypes follow PyTorch: Python floats (and lists of them) become float32;
NumPy / CuPy arrays keep their dtype; Python scalars in arithmetic do not
promote (``float32 * 2.0`` stays float32).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from neuro.backend import ANN_DTYPE, array_module, asnumpy, is_cupy_array, to_device, use_backend

from .erf_kernel import erf_array

__all__ = [
    "Tensor",
    "Size",
    "ValuesIndices",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "as_tensor",
    "zeros",
    "ones",
    "concatenate",
    "cat",
    "stack",
    "split",
    "where",
    "maximum",
    "minimum",
    "erf",
    "exp",
    "log",
    "sqrt",
    "tanh",
    "sigmoid",
    "matmul",
    "make_op",
]

_GRAD_ENABLED = True

# torch's device names and the backends that hold them
_DEVICES = {"cpu": "numpy", "cuda": "cupy"}


class Size(tuple):
    """A tensor's shape, as ``torch.Size``: a tuple of ints with :meth:`numel`."""

    def numel(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        return f"ann.Size({list(self)})"


class ValuesIndices(NamedTuple):
    """``(values, indices)`` from ``max(dim=...)``/``min(dim=...)``, as ``torch.return_types.max``."""

    values: "Tensor"
    indices: "Tensor"


def resolve_dim(axis, dim, default=None):
    """The axis from NumPy's ``axis`` or PyTorch's ``dim`` (aliases: give one; ``default`` when neither)."""
    if dim is None:
        return default if axis is None else axis
    if axis is not None and axis != dim:
        raise TypeError(f"give axis or dim, not both (got axis={axis!r}, dim={dim!r})")
    return dim


def _resolve_keep(keepdims: bool, keepdim) -> bool:
    """NumPy's ``keepdims`` or PyTorch's ``keepdim`` (aliases)."""
    return bool(keepdims) if keepdim is None else bool(keepdim)


def _device_backend(device: str) -> str:
    name = str(device).split(":")[0]
    if name not in _DEVICES:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return _DEVICES[name]


def is_grad_enabled() -> bool:
    """Whether operations currently record the graph."""
    return _GRAD_ENABLED


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager: operations inside record no graph (outputs do not require grad)."""
    global _GRAD_ENABLED
    previous = _GRAD_ENABLED
    _GRAD_ENABLED = False
    try:
        yield
    finally:
        _GRAD_ENABLED = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Context manager: re-enable graph recording inside a :func:`no_grad` block."""
    global _GRAD_ENABLED
    previous = _GRAD_ENABLED
    _GRAD_ENABLED = True
    try:
        yield
    finally:
        _GRAD_ENABLED = previous


# ------------------------------------------------------------------ helpers


def _xp(*arrays):
    """:func:`neuro.backend.array_module` with a fast path for NumPy arrays (the common case)."""
    for a in arrays:
        if type(a) is not np.ndarray and is_cupy_array(a):
            return array_module(a)
    return np


def _special(xp):
    """``scipy.special`` or ``cupyx.scipy.special`` for the array module ``xp``."""
    if xp is np:
        import scipy.special as special
    else:  # pragma: no cover - needs a GPU
        import cupyx.scipy.special as special
    return special


def _to_array(data: Any, dtype: Any = None):
    """``data`` as an array (NumPy unless it already is a CuPy array)."""
    if isinstance(data, Tensor):
        data = data.data
    if is_cupy_array(data):  # pragma: no cover - needs a GPU
        return data if dtype is None else data.astype(dtype, copy=False)
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype.kind == "f":  # Python floats -> float32, as torch.tensor
        arr = arr.astype(ANN_DTYPE)
    return arr


def _unbroadcast(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched, to ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _normalize_axis(axis, ndim: int):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral):
        axis = (int(axis),)
    out = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(out)


def _expand_reduced(grad, shape: tuple, axis, keepdims: bool):
    """Reshape a reduced gradient so that it broadcasts against ``shape``."""
    if keepdims:
        return grad
    axes = _normalize_axis(axis, len(shape))
    return grad.reshape([1 if i in axes else n for i, n in enumerate(shape)])


def _is_advanced_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    for it in items:
        if isinstance(it, (list, Tensor)) or hasattr(it, "__array_interface__") or is_cupy_array(it):
            return True
        if isinstance(it, np.ndarray):
            return True
    return False


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _scatter_add(xp, target, index, values) -> None:
    """``target[index] += values`` with repeated indices summed."""
    if xp is np:
        np.add.at(target, index, values)
    else:  # pragma: no cover - needs a GPU
        import cupyx

        cupyx.scatter_add(target, index, values)


# ------------------------------------------------------------------- Tensor


class Tensor:
    """An array with an optional gradient, the node type of the autograd graph.

    Parameters
    ----------
    data : array_like, numpy.ndarray, cupy.ndarray or Tensor
        The values. Arrays keep their dtype and device; Python floats become float32.
    requires_grad : bool
        Whether gradients with respect to this tensor are computed by :meth:`backward`.
    dtype : optional
        Cast ``data`` to this dtype.

    Attributes
    ----------
    data : the array, any shape.
    grad : array of the same shape and dtype as ``data`` (or ``None``), set on leaf
        tensors (and on tensors that called :meth:`retain_grad`) by :meth:`backward`.
        Deliberate difference: a plain NumPy/CuPy array, where PyTorch's ``.grad`` is a Tensor.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "_retain", "_freed", "__weakref__")
    __array_priority__ = 1000  # so ndarray * Tensor -> Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        arr = _to_array(data, dtype)
        if requires_grad and arr.dtype.kind not in "fc":
            raise TypeError(f"only floating tensors can require gradients, got dtype {arr.dtype}")
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple = ()
        self._backward: Callable | None = None
        self._op = ""
        self._retain = False
        self._freed = False

    # ---------------------------------------------------------------- info
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None):
        """The shape as a :class:`Size` (a tuple), or its length along ``dim`` (as ``torch.Tensor.size``)."""
        if dim is None:
            return Size(self.data.shape)
        return self.data.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions (``ndim``), as ``torch.Tensor.dim``."""
        return self.data.ndim

    @property
    def device(self) -> str:
        """``"cuda"`` for a CuPy array, ``"cpu"`` for a NumPy one."""
        return "cuda" if is_cupy_array(self.data) else "cpu"

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user (not by a recorded operation)."""
        return self._backward is None and not self._freed

    @property
    def xp(self):
        """The array module (numpy or cupy) of ``data``."""
        return _xp(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._op}" if self._op else ""
        return f"Tensor({asnumpy(self.data)!r}{extra}{op})"

    def numpy(self) -> np.ndarray:
        """The values as a ``numpy.ndarray`` (copied from the GPU if needed; shares memory on CPU)."""
        return asnumpy(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        """The values as (nested) Python lists of numbers, as ``torch.Tensor.tolist``."""
        return asnumpy(self.data).tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.data.reshape(()))

    def detach(self) -> "Tensor":
        """A new leaf tensor sharing ``data``, outside the graph."""
        return Tensor(self.data)

    def astype(self, dtype) -> "Tensor":
        """A copy cast to ``dtype`` (differentiable: the gradient is cast back)."""
        src = self.dtype
        return make_op(self.data.astype(dtype), (self,), lambda g: (g.astype(src),), "astype")

    def float(self) -> "Tensor":
        """``astype(float32)`` (differentiable), as ``torch.Tensor.float``."""
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        """``astype(float64)`` (differentiable), as ``torch.Tensor.double``."""
        return self.astype(np.float64)

    def long(self) -> "Tensor":
        """``astype(int64)`` (outside the graph), as ``torch.Tensor.long``."""
        return Tensor(self.data.astype(np.int64))

    def to(self, *args, dtype: Any = None, device: str | None = None) -> "Tensor":
        """A tensor on ``device`` (``"cpu"``: NumPy, ``"cuda"``: CuPy) and/or of ``dtype``, as ``torch.Tensor.to``.

        ``to("cuda")``, ``to(np.float64)``, ``to("cuda", np.float64)``, ``to(other_tensor)``
        (its device and dtype). Differentiable (the gradient goes back to this tensor's device
        and dtype). Returns ``self`` when nothing changes. ``"cuda"`` needs CuPy and a GPU
        (``RuntimeError`` naming what is missing otherwise).
        """
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) and a.split(":")[0] in _DEVICES:
                device = a
            else:
                dtype = a
        backend = None if device is None else _device_backend(device)
        same_device = backend is None or (backend == "cupy") == is_cupy_array(self.data)
        dtype = None if dtype is None else np.dtype(dtype)
        if same_device and (dtype is None or dtype == self.dtype):
            return self
        src_backend, src_dtype = ("cupy" if is_cupy_array(self.data) else "numpy"), self.dtype
        out = to_device(self.data, backend or src_backend, dtype or src_dtype)
        return make_op(out, (self,), lambda g: (to_device(g, src_backend, src_dtype),), "to")

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` on this non-leaf tensor after :meth:`backward` (as PyTorch)."""
        self._retain = True
        return self

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------ backward
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf), contracted with ``grad``, into each leaf's ``.grad``.

        ``grad`` (same shape as ``self``) may be omitted only when ``self`` has one
        element. The graph is freed afterwards unless ``retain_graph`` is True.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad (no graph was recorded)")
        xp = self.xp
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; got shape {self.shape}: "
                    "pass grad= of the same shape"
                )
            g = xp.ones_like(self.data)
        else:
            if xp is not np and isinstance(grad.data if isinstance(grad, Tensor) else grad, np.ndarray):
                raise TypeError(
                    "grad is a NumPy array but this tensor is on the GPU (CuPy): pass a CuPy array "
                    "(as PyTorch refuses a CPU gradient for a CUDA tensor)"
                )
            g = xp.asarray(_to_array(grad, self.dtype))
            if g.shape != self.shape:
                raise ValueError(f"grad must have the shape of the tensor {self.shape}, got {g.shape}")

        order = _topological_order(self)
        grads: dict[int, Any] = {id(self): g}
        while order:
            node = order.pop()  # children first; the walk drops its reference, so a node that nothing
            g = grads.pop(id(node), None)  # else holds frees its array now (reused by the next gradients)
            if g is None:
                continue
            if node._backward is None:
                if node._freed:
                    raise RuntimeError(
                        "trying to backward through the graph a second time; "
                        "call backward(retain_graph=True) the first time"
                    )
                _accumulate(node, g)
                continue
            if node._retain:
                _accumulate(node, g)
            parent_grads = node._backward(g)
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.data.shape:
                    pg = _unbroadcast(pg, parent.data.shape)
                key = id(parent)
                prev = grads.get(key)
                grads[key] = pg if prev is None else prev + pg
            if not retain_graph:
                node._backward = None
                node._parents = ()
                node._freed = True

    # ----------------------------------------------------------- arithmetic
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __neg__(self):
        return make_op(-self.data, (self,), lambda g: (-g,), "neg")

    def __pos__(self):
        return self

    def __pow__(self, other):
        return power(self, other)

    def __rpow__(self, other):
        return power(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    # comparisons give plain boolean tensors (no gradient)
    def _cmp(self, other, fn):
        return Tensor(fn(self.data, other.data if isinstance(other, Tensor) else other))

    def __lt__(self, other):
        return self._cmp(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._cmp(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._cmp(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._cmp(other, lambda a, b: a >= b)

    __hash__ = object.__hash__

    # ------------------------------------------------------------ functions
    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def abs(self):
        return absolute(self)

    def __abs__(self):
        return absolute(self)

    def tanh(self):
        return tanh(self)

    def sigmoid(self):
        return sigmoid(self)

    def erf(self):
        return erf(self)

    def clip(self, min=None, max=None):  # noqa: A002 - NumPy/PyTorch names
        return clip(self, min, max)

    clamp = clip

    # Reductions take NumPy's ``axis``/``keepdims`` or PyTorch's ``dim``/``keepdim`` (aliases).
    def sum(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return tsum(self, resolve_dim(axis, dim), _resolve_keep(keepdims, keepdim))

    def mean(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return mean(self, resolve_dim(axis, dim), _resolve_keep(keepdims, keepdim))

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0, *, dim=None, keepdim=None):
        """Variance with NumPy's default ``ddof=0`` (deliberately not PyTorch's ``correction=1``)."""
        return var(self, resolve_dim(axis, dim), _resolve_keep(keepdims, keepdim), ddof)

    def max(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """Maximum over ``axis`` (NumPy: the values), or with the keyword ``dim`` as PyTorch:
        a :class:`ValuesIndices` ``(values, indices)``. Deliberate difference: a positional
        axis ``t.max(1)`` gives the values only (NumPy's meaning), not PyTorch's pair."""
        return self._extreme(axis, keepdims, dim, keepdim, amax, "argmax")

    def min(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """Minimum, as :meth:`max`."""
        return self._extreme(axis, keepdims, dim, keepdim, amin, "argmin")

    def _extreme(self, axis, keepdims, dim, keepdim, reduce, arg):
        keep = _resolve_keep(keepdims, keepdim)
        if dim is None:
            return reduce(self, axis, keep)
        if axis is not None:
            raise TypeError(f"give axis or dim, not both (got axis={axis!r}, dim={dim!r})")
        return ValuesIndices(reduce(self, dim, keep), getattr(self, arg)(dim, keep))

    def argmax(self, dim: int | None = None, keepdim: bool = False, *, axis=None):
        """Index of the maximum along ``dim`` (of the flattened tensor when None), int64, no gradient; first on ties."""
        return _arg_extreme(self, resolve_dim(axis, dim), keepdim, "argmax")

    def argmin(self, dim: int | None = None, keepdim: bool = False, *, axis=None):
        """Index of the minimum, as :meth:`argmax`."""
        return _arg_extreme(self, resolve_dim(axis, dim), keepdim, "argmin")

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def view(self, *shape):
        """:meth:`reshape` under PyTorch's name. Deliberate difference: it never raises for a
        non-contiguous tensor (it copies then, where PyTorch asks for ``reshape``)."""
        return self.reshape(*shape)

    def transpose(self, *axes):
        """NumPy's permutation (``t.transpose(0, 2, 1)``, reversed when empty); given two axes of a
        tensor with ``ndim != 2``, PyTorch's swap of those two (``t.transpose(0, 1)`` on 3-D), where
        NumPy would raise. On 2-D both readings agree."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 2 and self.ndim != 2:
            return self.swapaxes(*axes)
        return transpose(self, axes or None)

    def permute(self, *dims):
        """Reorder the axes as ``dims`` (``torch.Tensor.permute``)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute needs a permutation of the {self.ndim} axes, got {dims}")
        return transpose(self, dims)

    def swapaxes(self, a: int, b: int):
        axes = list(range(self.ndim))
        axes[a], axes[b] = axes[b], axes[a]
        return transpose(self, tuple(axes))

    @property
    def T(self):
        return transpose(self, None)

    def __getitem__(self, index):
        return getitem(self, index)


def _topological_order(root: Tensor) -> list:
    """Nodes reachable from ``root`` that require grad, parents before children."""
    order: list = []
    seen = {id(root)}
    stack = [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        advanced = False
        for p in parents:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                stack.append((p, iter(p._parents)))
                advanced = True
                break
        if not advanced:
            stack.pop()
            order.append(node)
    return order


def _accumulate(node: Tensor, g) -> None:
    if g.dtype != node.data.dtype:
        g = g.astype(node.data.dtype)
    node.grad = g if node.grad is None else node.grad + g


def as_tensor(x: Any, dtype: Any = None) -> Tensor:
    """``x`` itself if it is a Tensor, else a constant (no-grad) Tensor of it."""
    if isinstance(x, Tensor):
        return x
    return Tensor(x, dtype=dtype)



def _filled(fill: str, size: tuple, dtype, requires_grad: bool, device, xp) -> Tensor:
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    if device is not None:
        with use_backend(_device_backend(device)):  # RuntimeError naming what is missing for "cuda" without a GPU
            xp = array_module()
    xp = xp or _xp()
    return Tensor(getattr(xp, fill)(shape, dtype=ANN_DTYPE if dtype is None else dtype), requires_grad=requires_grad)


def zeros(*size, dtype: Any = None, requires_grad: bool = False, device: str | None = None, xp=None) -> Tensor:
    """A tensor of zeros, float32 by default, as ``torch.zeros``: ``zeros(2, 3)`` or ``zeros((2, 3))``.

    ``device`` ``"cpu"``/``"cuda"`` (or ``xp``, the array module); default the current backend.
    """
    return _filled("zeros", size, dtype, requires_grad, device, xp)


def ones(*size, dtype: Any = None, requires_grad: bool = False, device: str | None = None, xp=None) -> Tensor:
    """A tensor of ones, as :func:`zeros`."""
    return _filled("ones", size, dtype, requires_grad, device, xp)


def make_op(data, parents: tuple, backward: Callable, op: str = "") -> Tensor:
    """A new tensor computed from ``parents``; ``backward(g)`` returns one gradient (or None) per parent.

    The node is recorded only when grad mode is on and a parent requires grad.
    This is how new primitives with hand-written gradients are defined.
    """
    out = Tensor.__new__(Tensor)
    out.data = data
    out.grad = None
    out._op = op
    out._retain = False
    out._freed = False
    if _GRAD_ENABLED and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._parents = parents
        out._backward = backward
    else:
        out.requires_grad = False
        out._parents = ()
        out._backward = None
    return out


def _operand(x, like: Tensor | None = None):
    """Tensor for ``x``; Python scalars stay weak (no dtype promotion), as PyTorch."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        x = x.item()  # NumPy scalars are weak like Python scalars (as in PyTorch)
    if isinstance(x, (bool, numbers.Number)):
        dtype = like.dtype if like is not None and like.dtype.kind == "f" else None
        return Tensor(np.asarray(x, dtype=dtype) if dtype is not None else x)
    return Tensor(x)


def _binary_operands(a, b):
    a_t = a if isinstance(a, Tensor) else None
    b_t = b if isinstance(b, Tensor) else None
    a = _operand(a, b_t)
    b = _operand(b, a_t if a_t is not None else a)
    if a.data.__class__ is not b.data.__class__:
        # move a NumPy constant to the tensor's device
        xp = _xp(a.data, b.data)
        if xp is not np:  # pragma: no cover - needs a GPU
            a = a if is_cupy_array(a.data) else Tensor(xp.asarray(a.data))
            b = b if is_cupy_array(b.data) else Tensor(xp.asarray(b.data))
    return a, b


# --------------------------------------------------------------- primitives


def add(a, b) -> Tensor:
    a, b = _binary_operands(a, b)
    return make_op(a.data + b.data, (a, b), lambda g: (g, g), "add")


def sub(a, b) -> Tensor:
    a, b = _binary_operands(a, b)
    return make_op(a.data - b.data, (a, b), lambda g: (g, -g if b.requires_grad else None), "sub")


def mul(a, b) -> Tensor:
    a, b = _binary_operands(a, b)

    def backward(g):
        return (g * b.data if a.requires_grad else None, g * a.data if b.requires_grad else None)

    return make_op(a.data * b.data, (a, b), backward, "mul")


def div(a, b) -> Tensor:
    a, b = _binary_operands(a, b)
    out = a.data / b.data

    def backward(g):
        ga = g / b.data if a.requires_grad else None
        gb = -g * out / b.data if b.requires_grad else None
        return ga, gb

    return make_op(out, (a, b), backward, "div")


def power(a, b) -> Tensor:
    """``a ** b``; the gradient for the exponent is taken as 0 where ``a == 0`` (as PyTorch)."""
    if isinstance(b, np.generic) and b.dtype.kind in "biuf":
        b = b.item()
    if not isinstance(b, Tensor) and isinstance(b, numbers.Number):
        a = _operand(a)
        p = b
        out = a.data**p

        def backward_scalar(g):
            if p == 0:
                return (g * 0,)
            if p == 1:
                return (g,)
            if p == 2:
                return (g * (2 * a.data),)
            return (g * (p * a.data ** (p - 1)),)

        return make_op(out, (a,), backward_scalar, "pow")
    a, b = _binary_operands(a, b)
    out = a.data**b.data

    def backward(g):
        xp = _xp(a.data)
        ga = g * b.data * a.data ** (b.data - 1) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            safe = xp.where(a.data > 0, a.data, 1)
            gb = g * out * xp.log(safe)
            gb = xp.where((a.data == 0) & (b.data >= 0), 0, gb).astype(out.dtype, copy=False)
        return ga, gb

    return make_op(out, (a, b), backward, "pow")


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy semantics (1-D operands, batched stacks broadcast)."""
    a, b = _binary_operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands with at least 1 dimension, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul shape mismatch: a has shape {a.shape} and b has shape {b.shape}; "
            f"a.shape[-1] ({k_a}) must equal b.shape[-2] ({k_b})"
        )
    out = a.data @ b.data

    def backward(g):
        xp = _xp(g)
        ad = a.data[None, :] if a.ndim == 1 else a.data
        bd = b.data[:, None] if b.ndim == 1 else b.data
        g2 = g
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        ga = gb = None
        if a.requires_grad:
            ga = g2 @ xp.swapaxes(bd, -1, -2)
            ga = _unbroadcast(ga, ad.shape).reshape(a.shape)
        if b.requires_grad:
            gb = xp.swapaxes(ad, -1, -2) @ g2
            gb = _unbroadcast(gb, bd.shape).reshape(b.shape)
        return ga, gb

    return make_op(out, (a, b), backward, "matmul")


def exp(x) -> Tensor:
    """Elementwise ``e**x`` (``torch.exp``), differentiable; same shape and dtype."""
    x = _operand(x)
    out = _xp(x.data).exp(x.data)
    return make_op(out, (x,), lambda g: (g * out,), "exp")


def log(x) -> Tensor:
    """Elementwise natural logarithm (``torch.log``), differentiable; same shape and dtype."""
    x = _operand(x)
    return make_op(_xp(x.data).log(x.data), (x,), lambda g: (g / x.data,), "log")


def sqrt(x) -> Tensor:
    """Elementwise square root (``torch.sqrt``), differentiable; same shape and dtype."""
    x = _operand(x)
    out = _xp(x.data).sqrt(x.data)
    return make_op(out, (x,), lambda g: (g / (2 * out),), "sqrt")


def absolute(x) -> Tensor:
    """``|x|``; gradient ``sign(x)`` (0 at 0, as PyTorch)."""
    x = _operand(x)
    xp = _xp(x.data)
    return make_op(xp.abs(x.data), (x,), lambda g: (g * xp.sign(x.data),), "abs")


def tanh(x) -> Tensor:
    """Elementwise hyperbolic tangent (``torch.tanh``), differentiable; same shape and dtype."""
    x = _operand(x)
    out = _xp(x.data).tanh(x.data)
    return make_op(out, (x,), lambda g: (g * (1 - out * out),), "tanh")


def sigmoid(x) -> Tensor:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow."""
    x = _operand(x)
    xp = _xp(x.data)
    out = _special(xp).expit(x.data)
    return make_op(out, (x,), lambda g: (g * out * (1 - out),), "sigmoid")


def erf(x) -> Tensor:
    """Error function; gradient ``2 / sqrt(pi) * exp(-x**2)``."""
    x = _operand(x)
    xp = _xp(x.data)
    out = erf_array(x.data)  # the registered kernel: a vectorized float32 erf on the CPU
    c = 2.0 / math.sqrt(math.pi)  # a Python float: a NumPy float64 scalar would promote float32 gradients
    return make_op(out, (x,), lambda g: (g * (c * xp.exp(-x.data * x.data)),), "erf")


def clip(x, min=None, max=None) -> Tensor:  # noqa: A002
    """Clamp to ``[min, max]``; gradient 1 where ``min <= x <= max`` (as ``torch.clamp``)."""
    x = _operand(x)
    xp = _xp(x.data)
    if min is None and max is None:
        raise ValueError("clip needs at least one of min and max")
    out = x.data
    mask = None
    if min is not None:
        out = xp.maximum(out, min)
        mask = x.data >= min
    if max is not None:
        out = xp.minimum(out, max)
        mask = (x.data <= max) if mask is None else mask & (x.data <= max)
    out = out.astype(x.dtype, copy=False)
    return make_op(out, (x,), lambda g: (g * mask,), "clip")


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` else ``b`` (broadcast); gradients flow to the chosen branch only."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    a, b = _binary_operands(a, b)
    xp = _xp(a.data, b.data)
    cond = xp.asarray(cond, dtype=bool)
    out = xp.where(cond, a.data, b.data)
    zero = xp.zeros((), out.dtype)

    def backward(g):
        ga = xp.where(cond, g, zero) if a.requires_grad else None
        gb = xp.where(cond, zero, g) if b.requires_grad else None
        return ga, gb

    return make_op(out, (a, b), backward, "where")


def _extremum(a, b, pick_a_fn, name):
    a, b = _binary_operands(a, b)
    xp = _xp(a.data, b.data)
    out = pick_a_fn(xp)(a.data, b.data)

    def backward(g):
        ad, bd = a.data, b.data
        wa = (ad == out).astype(g.dtype)
        wb = (bd == out).astype(g.dtype)
        tie = wa * wb
        wa = wa - 0.5 * tie
        wb = wb - 0.5 * tie
        return (g * wa if a.requires_grad else None, g * wb if b.requires_grad else None)

    return make_op(out, (a, b), backward, name)


def maximum(a, b) -> Tensor:
    """Elementwise maximum; on ties the gradient is split evenly (as ``torch.maximum``)."""
    return _extremum(a, b, lambda xp: xp.maximum, "maximum")


def minimum(a, b) -> Tensor:
    """Elementwise minimum; on ties the gradient is split evenly (as ``torch.minimum``)."""
    return _extremum(a, b, lambda xp: xp.minimum, "minimum")


# --------------------------------------------------------------- reductions


def tsum(x, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (int, tuple or None for all)."""
    x = _operand(x)
    xp = _xp(x.data)
    shape = x.shape
    out = xp.sum(x.data, axis=axis, keepdims=keepdims)

    def backward(g):
        return (xp.broadcast_to(_expand_reduced(g, shape, axis, keepdims), shape),)

    return make_op(out, (x,), backward, "sum")


def _count(shape, axis) -> int:
    n = 1
    for a in _normalize_axis(axis, len(shape)):
        n *= shape[a]
    return n


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (composed: ``sum / n``)."""
    x = _operand(x)
    return tsum(x, axis, keepdims) * (1.0 / max(_count(x.shape, axis), 1))


def var(x, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (NumPy's convention; PyTorch's default is ``ddof=1``)."""
    x = _operand(x)
    n = _count(x.shape, axis)
    centered = x - mean(x, axis, keepdims=True)
    return tsum(centered * centered, axis, keepdims) * (1.0 / (n - ddof))


def _arg_extreme(x, dim, keepdim, fn_name) -> Tensor:
    x = _operand(x)
    xp = _xp(x.data)
    out = getattr(xp, fn_name)(x.data, axis=dim)
    if keepdim:
        out = xp.expand_dims(out, dim) if dim is not None else out.reshape((1,) * x.ndim)
    return Tensor(out.astype(np.int64))


def _extreme_reduce(x, axis, keepdims, fn_name, op):
    x = _operand(x)
    xp = _xp(x.data)
    shape = x.shape
    out = getattr(xp, fn_name)(x.data, axis=axis, keepdims=keepdims)

    def backward(g):
        o = _expand_reduced(out, shape, axis, keepdims)
        mask = (x.data == o).astype(g.dtype)
        mask = mask / mask.sum(axis=axis, keepdims=True)
        return (_expand_reduced(g, shape, axis, keepdims) * mask,)

    return make_op(out, (x,), backward, op)


def amax(x, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; ties share the gradient evenly (as ``torch.amax``)."""
    return _extreme_reduce(x, axis, keepdims, "max", "max")


def amin(x, axis=None, keepdims: bool = False) -> Tensor:
    """Minimum over ``axis``; ties share the gradient evenly (as ``torch.amin``)."""
    return _extreme_reduce(x, axis, keepdims, "min", "min")


# ---------------------------------------------------------------- shape ops


def reshape(x, shape) -> Tensor:
    x = _operand(x)
    old = x.shape
    return make_op(x.data.reshape(shape), (x,), lambda g: (g.reshape(old),), "reshape")


def transpose(x, axes=None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None)."""
    x = _operand(x)
    xp = _xp(x.data)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(a % x.ndim for a in axes)
    inverse = tuple(int(i) for i in np.argsort(axes))
    return make_op(xp.transpose(x.data, axes), (x,), lambda g: (xp.transpose(g, inverse),), "transpose")


def getitem(x, index) -> Tensor:
    """Basic and integer-array indexing; repeated integer indices accumulate their gradients."""
    x = _operand(x)
    xp = _xp(x.data)
    index = _unwrap_index(index)
    out = x.data[index]
    advanced = _is_advanced_index(index)

    def backward(g):
        full = xp.zeros(x.shape, dtype=g.dtype)
        if advanced:
            _scatter_add(xp, full, index, g)
        else:
            full[index] = g
        return (full,)

    return make_op(out, (x,), backward, "getitem")


def concatenate(tensors: Sequence, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing ``axis`` (default 0; ``dim``: PyTorch's name, an alias)."""
    axis = resolve_dim(axis, dim, 0)
    tensors = [_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    xp = _xp(*[t.data for t in tensors])
    out = xp.concatenate([t.data for t in tensors], axis=axis)
    ax = axis % out.ndim
    bounds = [int(b) for b in np.cumsum([t.shape[ax] for t in tensors])[:-1]]

    def backward(g):
        return tuple(xp.split(g, bounds, axis=ax))

    return make_op(out, tuple(tensors), backward, "concatenate")


def cat(tensors: Sequence, dim: int = 0) -> Tensor:
    """``torch.cat``: :func:`concatenate` along ``dim``."""
    return concatenate(tensors, dim)


def stack(tensors: Sequence, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Join tensors along a new ``axis`` (default 0; ``dim``: PyTorch's name, an alias; composed: expand + concatenate)."""
    axis = resolve_dim(axis, dim, 0)
    tensors = [_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    ndim = tensors[0].ndim + 1
    ax = axis % ndim
    expanded = [reshape(t, t.shape[:ax] + (1,) + t.shape[ax:]) for t in tensors]
    return concatenate(expanded, axis=ax)


def split(x, indices_or_sections, axis: int = 0) -> list:
    """Split into pieces along ``axis`` as ``numpy.split`` (composed from slicing)."""
    x = _operand(x)
    ax = axis % x.ndim
    n = x.shape[ax]
    if isinstance(indices_or_sections, numbers.Integral):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ValueError(f"indices_or_sections={k} does not divide axis {axis} of length {n} equally")
        bounds = [i * (n // k) for i in range(k + 1)]
    else:
        bounds = [0, *[int(i) for i in indices_or_sections], n]
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        idx = (slice(None),) * ax + (slice(lo, hi),)
        pieces.append(getitem(x, idx))
    return pieces
