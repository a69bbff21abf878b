"""Finite-difference check of hand-written gradients, in float64."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from neuro.backend import asnumpy, is_cupy_array

from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError", "numerical_jacobian", "analytical_jacobian"]


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when analytical and numerical Jacobians differ."""


def _prepare(inputs: Sequence) -> list:
    prepared = []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor):
            if x.dtype.kind == "f":
                t = Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad)
            else:
                t = x
        elif (isinstance(x, np.ndarray) or is_cupy_array(x)) and x.dtype.kind == "f":
            t = Tensor(x.astype(np.float64), requires_grad=True)
        else:
            raise TypeError(f"inputs[{i}] must be a Tensor or a floating numpy/cupy array, got {type(x).__name__}")
        prepared.append(t)
    if not any(t.requires_grad for t in prepared):
        raise ValueError("gradcheck needs at least one input with requires_grad=True")
    return prepared


def _outputs(fn: Callable, inputs: list) -> list:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"fn must return a Tensor or a tuple of Tensors, got {type(o).__name__}")
    return outs


def numerical_jacobian(fn: Callable, inputs: list, eps: float = 1e-6) -> list:
    """Central-difference Jacobians: ``J[k][i]`` of shape ``(out_k.numel(), inputs[i].numel())``."""
    with_grad = [i for i, t in enumerate(inputs) if t.requires_grad]
    base = _outputs(fn, inputs)
    jac = [[np.zeros((o.numel(), inputs[i].numel())) for i in with_grad] for o in base]
    for col, i in enumerate(with_grad):
        x = inputs[i].data
        flat = x.reshape(-1)
        for j in range(flat.size):
            old = float(flat[j])
            flat[j] = old + eps
            plus = [asnumpy(o.data).astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[j] = old - eps
            minus = [asnumpy(o.data).astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[j] = old
            for k in range(len(base)):
                jac[k][col][:, j] = (plus[k] - minus[k]) / (2 * eps)
    return jac


def analytical_jacobian(fn: Callable, inputs: list) -> list:
    """Jacobians from reverse mode, one backward pass per output element."""
    with_grad = [i for i, t in enumerate(inputs) if t.requires_grad]
    probe = _outputs(fn, inputs)
    jac = [[np.zeros((o.numel(), inputs[i].numel())) for i in with_grad] for o in probe]
    for k, o in enumerate(probe):
        if not o.requires_grad:
            continue
        for r in range(o.numel()):
            for i in with_grad:
                inputs[i].grad = None
            outs = _outputs(fn, inputs)
            seed = o.xp.zeros(o.numel(), dtype=o.dtype)  # on the output's device
            seed[r] = 1.0
            outs[k].backward(seed.reshape(o.shape))
            for col, i in enumerate(with_grad):
                g = inputs[i].grad
                if g is not None:
                    jac[k][col][r, :] = asnumpy(g).reshape(-1)
    for i in with_grad:
        inputs[i].grad = None
    return jac


def gradcheck(
    fn: Callable,
    inputs: Sequence,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Compare reverse-mode gradients of ``fn(*inputs)`` with central finite differences.

    Floating inputs are copied to float64 first (the check is meaningless in
    float32). Every output element is checked against every element of every
    input with ``requires_grad=True``: ``|analytical - numerical| <= atol + rtol * |numerical|``.
    Returns True, or raises :class:`GradcheckError` naming the worst entry
    (returns False instead when ``raise_exception`` is False).
    """
    prepared = _prepare(inputs)
    numerical = numerical_jacobian(fn, prepared, eps)
    analytical = analytical_jacobian(fn, prepared)
    with_grad = [i for i, t in enumerate(prepared) if t.requires_grad]
    for k in range(len(numerical)):
        for col, i in enumerate(with_grad):
            num, ana = numerical[k][col], analytical[k][col]
            bad = np.abs(ana - num) > atol + rtol * np.abs(num)
            if bad.any():
                if not raise_exception:
                    return False
                r, c = np.unravel_index(np.argmax(np.abs(ana - num) * bad), bad.shape)
                raise GradcheckError(
                    f"gradient mismatch for output {k} w.r.t. input {i} at (output element {r}, input element {c}): "
                    f"analytical {ana[r, c]:.8g} vs numerical {num[r, c]:.8g}"
                )
    return True
