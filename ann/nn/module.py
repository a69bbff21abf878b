"""``Module`` and ``Parameter``: containers of learnable tensors with PyTorch's naming.

A module's state dict maps dotted names (``"0.weight"``, ``"encoder.bias"``) to
arrays, exactly as PyTorch names them, so that a PyTorch state dict converted
to NumPy (``{k: v.numpy() for k, v in sd.items()}``) loads directly.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from neuro.backend import array_module, asnumpy, to_device

from ..tensor import Tensor, _device_backend

__all__ = ["Parameter", "Module", "RemovableHandle", "IncompatibleKeys"]


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` returns, as PyTorch's: the keys it did not match."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"


def _to_arguments(args, dtype, device, backend):
    """``Module.to``'s positional arguments (torch's forms) as ``(dtype, backend)``."""
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda"):
            device = a
        else:
            dtype = a
    if device is not None:
        to_backend = _device_backend(device)
        if backend is not None and backend != to_backend:
            raise ValueError(f"device={device!r} and backend={backend!r} disagree")
        backend = to_backend
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"Module.to takes a device ('cpu', 'cuda') or a floating dtype, got {dtype!r}") from exc
        if dtype.kind not in "fc":
            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype={dtype}")
    return dtype, backend

_handle_ids = itertools.count()


def _torch_size(shape) -> str:
    return f"torch.Size({list(shape)})"


def _zero(p: Tensor, set_to_none: bool) -> None:
    """``p.grad = None``, or zeros in place (``set_to_none=False``), as PyTorch's ``zero_grad``."""
    if set_to_none or p.grad is None:
        p.grad = None
    else:
        p.grad[...] = 0


class RemovableHandle:
    """What ``register_forward_hook`` / ``register_forward_pre_hook`` return: ``remove()`` detaches the hook.

    As ``torch.utils.hooks.RemovableHandle``: ``id`` is unique, ``remove()`` may be
    called more than once, and ``with handle:`` removes the hook on exit.
    """

    def __init__(self, *hook_dicts: dict):
        self.id = next(_handle_ids)
        self._dicts = hook_dicts

    def remove(self) -> None:
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class Parameter(Tensor):
    """A leaf tensor registered by a :class:`Module` as learnable (``requires_grad=True`` by default)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad, dtype=dtype)


class Module:
    """Base class of layers: assign :class:`Parameter` s and sub-modules as attributes.

    Subclasses implement ``forward(*args)``; calling the module calls it.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_hooks_with_kwargs", set())
        object.__setattr__(self, "_hooks_always_called", set())
        object.__setattr__(self, "training", True)

    # --------------------------------------------------------- attributes
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning attributes")
        target = self._parameters if isinstance(value, Parameter) else self._modules if isinstance(value, Module) else None
        for store in (self._parameters, self._buffers, self._modules):
            if store is not target:
                store.pop(name, None)
        if target is None:
            object.__setattr__(self, name, value)
            return
        target[name] = value  # an existing name keeps its place (Sequential order, state-dict order)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, array: Any) -> None:
        """A non-learnable array saved in the state dict (e.g. running statistics)."""
        self._buffers[name] = array

    def add_module(self, name: str, module: "Module") -> None:
        setattr(self, name, module)

    # --------------------------------------------------------------- call
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        pre, post = self.__dict__.get("_forward_pre_hooks"), self.__dict__.get("_forward_hooks")
        if not pre and not post:
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(pre, post, args, kwargs)

    def _call_with_hooks(self, pre: dict, post: dict, args: tuple, kwargs: dict):
        """``forward`` wrapped in its hooks, in the order and with the arguments PyTorch uses."""
        with_kwargs = self._hooks_with_kwargs
        for hid, hook in list(pre.items()):
            if hid in with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        called = set()
        try:
            output = self.forward(*args, **kwargs)
            for hid, hook in list(post.items()):
                called.add(hid)
                result = hook(self, args, kwargs, output) if hid in with_kwargs else hook(self, args, output)
                if result is not None:
                    output = result
        except Exception:
            for hid, hook in list(post.items()):  # always_call hooks run even when forward or a hook raised
                if hid in self._hooks_always_called and hid not in called:
                    try:
                        hook(self, args, kwargs, None) if hid in with_kwargs else hook(self, args, None)
                    except Exception as exc:  # as PyTorch: warn, and re-raise the first error
                        warnings.warn(f"forward hook with always_call=True raised an exception that was silenced: {exc!r}")
            raise
        return output

    def _add_hook(self, store_name: str, hook: Callable, prepend: bool, with_kwargs: bool, always_call: bool = False) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        store = self.__dict__[store_name]
        handle = RemovableHandle(store)
        store[handle.id] = hook
        if prepend:
            store.move_to_end(handle.id, last=False)
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        if always_call:
            self._hooks_always_called.add(handle.id)
        return handle

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward`` (as PyTorch).

        ``args`` is the tuple of positional arguments. A hook may return a
        replacement (a tuple, or a single value that is wrapped in one) or
        ``None`` to leave them. With ``with_kwargs=True`` it is called as
        ``hook(module, args, kwargs)`` and may return ``(args, kwargs)``.
        ``prepend=True`` runs it before the hooks already registered. Returns
        a :class:`RemovableHandle`.
        """
        return self._add_hook("_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward`` (as PyTorch).

        ``args`` are the positional arguments ``forward`` received (after the
        pre-hooks). A hook may return a replacement output, or ``None``. With
        ``with_kwargs=True`` it is called as ``hook(module, args, kwargs, output)``.
        ``always_call=True`` calls it (with ``output=None``) even when
        ``forward`` or an earlier hook raised. A hook that raises propagates its
        exception; the module itself is left unchanged and usable. Returns a
        :class:`RemovableHandle`.
        """
        return self._add_hook("_forward_hooks", hook, prepend, with_kwargs, always_call)

    # ------------------------------------------------------------ walking
    def named_modules(self, prefix: str = "") -> Iterator[tuple]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def get_submodule(self, target: str) -> "Module":
        """The sub-module at the dotted name ``target`` (``""`` is ``self``), as PyTorch.

        ``AttributeError`` if a step does not exist or is not a Module.
        """
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return mod

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        """Put ``module`` at the dotted name ``target`` (e.g. ``"0.2"``, ``"block0.act"``), as PyTorch.

        The parent must exist; an existing attribute of that name must be a
        Module (it is replaced in place, keeping its position). With
        ``strict=True`` the attribute must already exist. ``ValueError`` for an
        empty ``target`` or a ``module`` that is not a Module.
        """
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        atoms = target.split(".")
        parent = self.get_submodule(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(f"{type(parent).__name__} has no attribute `{atoms[-1]}`")
        if hasattr(parent, atoms[-1]) and not isinstance(getattr(parent, atoms[-1]), Module):
            raise AttributeError(f"`{atoms[-1]}` is not an nn.Module")
        setattr(parent, atoms[-1], module)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple]:
        """``(dotted_name, Parameter)`` pairs, each parameter once, in registration order."""
        seen = set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> list:
        """Every parameter once, in registration order. Deliberate difference: a list (PyTorch gives an
        iterator), so that ``a.parameters() + b.parameters()`` works."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple]:
        for mod_name, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                yield (f"{mod_name}.{name}" if mod_name else name), b

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every parameter's ``.grad`` to None (PyTorch's default since 2.0), or to zeros in place
        with ``set_to_none=False``."""
        for p in self.parameters():
            _zero(p, set_to_none)

    def to(self, *args, dtype: Any = None, device: str | None = None, backend: str | None = None) -> "Module":
        """Move and/or cast every parameter and buffer in place, as ``torch.nn.Module.to``; returns ``self``.

        ``to("cuda")`` / ``to("cpu")`` (or ``device=``), ``to(np.float64)`` (or ``dtype=``),
        ``to("cuda", np.float64)``, ``to(tensor)`` (its device and dtype). ``"cuda"`` is the CuPy backend
        (``RuntimeError`` naming what is missing without CuPy or a GPU); ``backend="numpy"/"cupy"``
        is the toolkit's own name for the same. As PyTorch, only floating parameters and buffers are
        cast, and a non-floating ``dtype`` raises ``TypeError``. Deliberate difference: gradients are
        dropped (set to None), not moved.
        """
        dtype, backend = _to_arguments(args, dtype, device, backend)
        for m in self.modules():
            for p in m._parameters.values():
                data = p.data if backend is None else to_device(p.data, backend)
                p.data = data if dtype is None or data.dtype.kind not in "fc" else data.astype(dtype)
                p.grad = None
            for name, b in list(m._buffers.items()):
                data = b if backend is None else to_device(b, backend)
                floating = getattr(data, "dtype", None) is not None and data.dtype.kind == "f"  # no host copy of CuPy data
                m._buffers[name] = data.astype(dtype) if dtype is not None and floating else data
        return self

    def cuda(self) -> "Module":
        """``to("cuda")``: every parameter and buffer on the GPU (CuPy)."""
        return self.to("cuda")

    def cpu(self) -> "Module":
        """``to("cpu")``: every parameter and buffer in host memory (NumPy)."""
        return self.to("cpu")

    def float(self) -> "Module":
        """``to(float32)``: floating parameters and buffers cast to float32."""
        return self.to(np.float32)

    def double(self) -> "Module":
        """``to(float64)``: floating parameters and buffers cast to float64."""
        return self.to(np.float64)

    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.parameters()))

    # ------------------------------------------------------- state dicts
    def state_dict(self) -> "OrderedDict[str, Any]":
        """Dotted names (PyTorch's) to the parameter and buffer arrays (not copies)."""
        out: OrderedDict = OrderedDict()
        for mod_name, m in self.named_modules():
            for name, p in m._parameters.items():
                out[f"{mod_name}.{name}" if mod_name else name] = p.data
            for name, b in m._buffers.items():
                out[f"{mod_name}.{name}" if mod_name else name] = b
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state`` into the parameters and buffers, in place, as PyTorch.

        Values may be NumPy/CuPy arrays or anything ``numpy.asarray`` accepts
        (a PyTorch tensor's ``.numpy()``). Returns :class:`IncompatibleKeys`
        ``(missing_keys, unexpected_keys)``. Raises ``RuntimeError`` with PyTorch's
        wording for a shape mismatch, and, with ``strict``, for missing or unexpected
        keys; then nothing is copied (PyTorch copies the keys that matched).
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        errors = []
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
        if strict and missing:
            errors.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
        for key, value in state.items():
            if key in own and tuple(np.shape(value)) != own[key].shape:  # np.shape reads .shape (no copy of CuPy data)
                errors.append(f"size mismatch for {key}: copying a param with shape {_torch_size(np.shape(value))} "
                              f"from checkpoint, the shape in current model is {_torch_size(own[key].shape)}.")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        targets = {}
        for mod_name, m in self.named_modules():
            for name, p in m._parameters.items():
                targets[f"{mod_name}.{name}" if mod_name else name] = (m, name, True)
            for name in m._buffers:
                targets[f"{mod_name}.{name}" if mod_name else name] = (m, name, False)
        for key, value in state.items():
            if key not in targets:
                continue
            m, name, is_param = targets[key]
            current = m._parameters[name].data if is_param else m._buffers[name]
            xp = array_module(current)
            arr = xp.asarray(asnumpy(value) if xp is np else value)
            if is_param:
                m._parameters[name].data = arr.astype(current.dtype, copy=True)
            else:
                m._buffers[name] = arr.astype(current.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        if len(lines) == 1:
            return lines[0] + ")"
        return "\n".join(lines) + "\n)"
