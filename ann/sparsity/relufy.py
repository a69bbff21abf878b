"""Relufication (Mirzadeh et al. 2023): swap a model's activations for ReLU, in place.

Only activation modules change (see :func:`~ann.sparsity.recorder.is_activation`):
parameters, buffers and every other module stay the same objects, so a
relufied model is fine-tuned from the weights it had. Replacing a
:class:`~ann.nn.PReLU` drops its slope parameter.
"""

from __future__ import annotations

from typing import Iterable

from .. import activations as A
from ..nn.activation import Activation, ShiftedReGLU
from ..nn.layers import LayerNorm, RMSNorm
from ..nn.module import Module
from .recorder import activation_sites, is_activation

__all__ = ["relufy", "NormReLU"]

ACTIVATIONS = ("relu", "shifted_relu")


class NormReLU(Module):
    """``relu(norm(x))``: a LayerNorm/RMSNorm followed by a ReLU, keeping the norm's parameter names.

    The norm's parameters are registered directly on this module (the same
    Parameter objects), so ``"norm1.weight"`` stays ``"norm1.weight"``.
    """

    def __init__(self, norm: Module):
        super().__init__()
        if not isinstance(norm, (LayerNorm, RMSNorm)):
            raise TypeError(f"norm must be a LayerNorm or RMSNorm, got {type(norm).__name__}")
        object.__setattr__(self, "norm", norm)  # not a child: its parameters are ours
        for name, p in norm._parameters.items():
            self._parameters[name] = p

    def forward(self, x):
        return A.relu(self.norm(x))

    def extra_repr(self) -> str:
        return repr(self.norm)


def _replacement(module: Module, activation: str, shift: float) -> Module:
    gated = isinstance(module, Activation) and module.name in A.names() and A.spec(module.name).kind == "gated"
    gated = gated or isinstance(module, ShiftedReGLU)
    if activation == "relu":
        return Activation("reglu" if gated else "relu")
    return ShiftedReGLU(shift) if gated else Activation("shifted_relu", shift=shift)


def _norms_after_which(model: Module, after_norm) -> list[str]:
    """Norms to follow by a ReLU: ``True`` -> every LayerNorm/RMSNorm whose parent module also holds an
    activation (the norms inside Transformer blocks, not a model's final norm); or the dotted names given."""
    if after_norm is False or after_norm is None:
        return []
    if after_norm is True:
        out = []
        for parent_name, parent in model.named_modules():
            if any(is_activation(c) for c in parent.children()):
                for name, child in parent._modules.items():
                    if isinstance(child, (LayerNorm, RMSNorm)):
                        out.append(f"{parent_name}.{name}" if parent_name else name)
        return out
    names = [after_norm] if isinstance(after_norm, str) else list(after_norm)
    for name in names:
        if not isinstance(model.get_submodule(name), (LayerNorm, RMSNorm)):
            raise ValueError(f"after_norm: {name!r} is not a LayerNorm or RMSNorm")
    return names


def relufy(model: Module, activation: str = "relu", shift: float = 1.0, after_norm: bool | Iterable[str] = False,
           sites: Iterable[str] | None = None) -> list[dict]:
    """Replace the activations of ``model`` by ReLU (or shifted ReLU), in place.

    Parameters
    ----------
    model : Module
    activation : ``"relu"`` or ``"shifted_relu"`` (``relu(x - shift)``). Gated
        activations (GLU, SwiGLU, GeGLU) become ``reglu`` / :class:`~ann.nn.ShiftedReGLU`.
    shift : the shift of ``"shifted_relu"``.
    after_norm : also put a ReLU after normalization layers (stage 2 of
        relufication): ``True`` for every LayerNorm/RMSNorm whose parent also
        holds an activation (the norms feeding attention and the FFN in a
        Transformer block, not the final norm), or a list of dotted names.
    sites : dotted names of the activations to swap (default: all).

    Returns
    -------
    list of ``{"name", "before", "after"}`` (reprs), one per changed module, in order.
    Sites already holding the target activation are left out.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be an ann.nn.Module, got {type(model).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if not isinstance(shift, (int, float)) or isinstance(shift, bool):
        raise TypeError(f"shift must be a real number, got {shift!r}")
    names = activation_sites(model) if sites is None else list(sites)
    norms = _norms_after_which(model, after_norm)
    changes = []
    for name in names:
        old = model.get_submodule(name)
        if not is_activation(old):
            raise ValueError(f"sites: {name!r} is a {type(old).__name__}, not an activation")
        new = _replacement(old, activation, float(shift))
        if repr(new) == repr(old) and type(new) is type(old):
            continue
        model.set_submodule(name, new, strict=True)
        changes.append({"name": name, "before": repr(old), "after": repr(new)})
    for name in norms:
        old = model.get_submodule(name)
        model.set_submodule(name, NormReLU(old), strict=True)
        changes.append({"name": name, "before": repr(old), "after": f"NormReLU({old!r})"})
    return changes
