"""Gradient clipping by global norm and by value (PyTorch's ``clip_grad_norm_`` / ``clip_grad_value_``)."""

from __future__ import annotations

import math
from typing import Iterable


from ..tensor import Tensor, _xp

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Rescale all gradients together so that their global ``norm_type``-norm is at most ``max_norm``.

    Returns the total norm before clipping. As PyTorch, gradients are scaled by
    ``min(1, max_norm / (total_norm + 1e-6))``. ``norm_type`` may be ``inf``.
    """
    if max_norm < 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    params = _grads(parameters)
    if not params:
        return 0.0
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(_xp(p.grad).abs(p.grad).max()) for p in params)
    else:
        total = sum(float((_xp(p.grad).abs(p.grad) ** norm_type).sum()) for p in params) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite ({total})")
    coef = min(1.0, max_norm / (total + 1e-6))
    for p in params:
        p.grad = p.grad * coef
    return total


def clip_grad_value_(parameters: Iterable, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``."""
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for p in _grads(parameters):
        p.grad = _xp(p.grad).clip(p.grad, -clip_value, clip_value)
