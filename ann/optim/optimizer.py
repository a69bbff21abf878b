"""Optimizers with PyTorch's update rules (single-tensor, ``maximize=False``).

Each optimizer updates ``param.data`` in place from ``param.grad``; gradients
are never modified. Weight decay is L2 added to the gradient
(``g + weight_decay * p``) except in :class:`AdamW`, where it is decoupled
(``p *= 1 - lr * weight_decay`` before the Adam step), exactly as PyTorch.
Hyperparameters live in ``param_groups`` (so schedulers can change ``lr``);
per-parameter buffers in ``state``.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np


from ..tensor import Tensor, _xp, enable_grad

__all__ = ["Optimizer", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "AdamW", "Adamax"]


def _check_nonneg(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _check_betas(betas) -> tuple:
    b1, b2 = betas
    for i, b in enumerate((b1, b2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"betas[{i}] must be in [0, 1), got {b}")
    return float(b1), float(b2)


class Optimizer:
    """Base class: ``params`` is an iterable of tensors or of dicts (parameter groups with their own settings)."""

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list = []
        seen = set()
        for g in groups:
            ps = list(g["params"]) if not isinstance(g["params"], Tensor) else [g["params"]]
            for p in ps:
                if not isinstance(p, Tensor):
                    raise TypeError(f"optimizer params must be Tensors, got {type(p).__name__}")
                if not p.requires_grad:
                    raise ValueError("optimizer params must require grad")
                if id(p) in seen:
                    raise ValueError("a parameter appears in more than one group")
                seen.add(id(p))
            group = {**self.defaults, **{k: v for k, v in g.items() if k != "params"}, "params": ps}
            group.setdefault("initial_lr", group["lr"])
            self.param_groups.append(group)


    def __repr__(self) -> str:
        """PyTorch's format: the class name, then each parameter group's settings, sorted."""
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every parameter's ``.grad`` to None (PyTorch's default since 2.0), or to zeros in place
        with ``set_to_none=False``."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is not None:
                yield p, p.grad

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient, as PyTorch's.

        ``closure`` (optional) re-evaluates the model and returns the loss: it is called first,
        with gradients enabled, and its loss is returned (``None`` without a closure).
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p, g in self._params_with_grad(group):
                st = self.state.setdefault(id(p), {})
                self._update(p, g, st, group)
        return loss

    def _update(self, p: Tensor, g, state: dict, group: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------- state
    def state_dict(self) -> dict:
        """``{"state": {index: {name: array}}, "param_groups": [...]}`` with parameters as indices (as PyTorch)."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[k]: dict(v) for k, v in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`'s output. Unlike PyTorch, the state's arrays are checked against
        the parameters' shapes, so another model's state fails here, not at the next ``step()``."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state dict has {len(groups)} parameter groups, the optimizer {len(self.param_groups)}")
        params = []
        for saved, group in zip(groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError("state dict parameter groups differ in size from the optimizer's")
            params.extend(group["params"])
            for k, v in saved.items():
                if k != "params":
                    group[k] = v
        for i, st in state_dict["state"].items():
            if not 0 <= int(i) < len(params):
                raise ValueError(f"state dict has state for parameter {i}, the optimizer has {len(params)} parameters")
            for k, v in st.items():
                if np.ndim(v) > 0 and tuple(np.shape(v)) != tuple(params[int(i)].shape):
                    raise ValueError(f"state dict's {k!r} of parameter {i} has shape {tuple(np.shape(v))}, "
                                     f"the parameter {tuple(params[int(i)].shape)}: it is another model's state")
        self.state = {}
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            xp = _xp(p.data)
            self.state[id(p)] = {
                k: (xp.asarray(v, dtype=p.dtype).copy() if np.ndim(v) > 0 or k != "step" else v) for k, v in st.items()
            }


def _decayed(p: Tensor, g, weight_decay: float):
    return g if weight_decay == 0 else g + weight_decay * p.data


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening and Nesterov momentum (PyTorch's formulation)."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        _check_nonneg("lr", lr)
        _check_nonneg("momentum", momentum)
        _check_nonneg("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, g, st, group):
        g = _decayed(p, g, group["weight_decay"])
        mu = group["momentum"]
        if mu != 0:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = g.copy()
            else:
                buf *= mu
                buf += (1 - group["dampening"]) * g
            g = g + mu * buf if group["nesterov"] else buf
        p.data -= group["lr"] * g


class RMSprop(Optimizer):
    """RMSprop (Hinton), with PyTorch's ``centered`` and ``momentum`` options (eps added outside the sqrt)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        for n, v in dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum).items():
            _check_nonneg(n, v)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered))

    def _update(self, p, g, st, group):
        xp = _xp(p.data)
        g = _decayed(p, g, group["weight_decay"])
        alpha = group["alpha"]
        if not st:
            st["step"] = 0
            st["square_avg"] = xp.zeros_like(p.data)
            if group["momentum"] > 0:
                st["momentum_buffer"] = xp.zeros_like(p.data)
            if group["centered"]:
                st["grad_avg"] = xp.zeros_like(p.data)
        st["step"] += 1
        sq = st["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * g * g
        if group["centered"]:
            ga = st["grad_avg"]
            ga *= alpha
            ga += (1 - alpha) * g
            avg = xp.sqrt(sq - ga * ga) + group["eps"]
        else:
            avg = xp.sqrt(sq) + group["eps"]
        if group["momentum"] > 0:
            buf = st["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (g / avg)


class Adagrad(Optimizer):
    """Adagrad with PyTorch's ``lr_decay`` and ``initial_accumulator_value``."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        for n, v in dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=initial_accumulator_value, eps=eps).items():
            _check_nonneg(n, v)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _update(self, p, g, st, group):
        xp = _xp(p.data)
        if not st:
            st["step"] = 0
            st["sum"] = xp.full_like(p.data, group["initial_accumulator_value"])
        st["step"] += 1
        g = _decayed(p, g, group["weight_decay"])
        clr = group["lr"] / (1 + (st["step"] - 1) * group["lr_decay"])
        st["sum"] += g * g
        p.data -= clr * (g / (xp.sqrt(st["sum"]) + group["eps"]))


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012) with PyTorch's ``lr`` scaling of the step."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0):
        for n, v in dict(lr=lr, eps=eps, weight_decay=weight_decay).items():
            _check_nonneg(n, v)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], got {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, st, group):
        xp = _xp(p.data)
        if not st:
            st["step"] = 0
            st["square_avg"] = xp.zeros_like(p.data)
            st["acc_delta"] = xp.zeros_like(p.data)
        st["step"] += 1
        g = _decayed(p, g, group["weight_decay"])
        rho, eps = group["rho"], group["eps"]
        sq, acc = st["square_avg"], st["acc_delta"]
        sq *= rho
        sq += (1 - rho) * g * g
        delta = xp.sqrt(acc + eps) / xp.sqrt(sq + eps) * g
        acc *= rho
        acc += (1 - rho) * delta * delta
        p.data -= group["lr"] * delta


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, L2 ``weight_decay`` and the ``amsgrad`` variant (PyTorch's rule)."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        _check_nonneg("lr", lr)
        _check_nonneg("eps", eps)
        _check_nonneg("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=_check_betas(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, p, g, st, group):
        xp = _xp(p.data)
        lr, wd = group["lr"], group["weight_decay"]
        b1, b2 = group["betas"]
        if not st:
            st["step"] = 0
            st["exp_avg"] = xp.zeros_like(p.data)
            st["exp_avg_sq"] = xp.zeros_like(p.data)
            if group["amsgrad"]:
                st["max_exp_avg_sq"] = xp.zeros_like(p.data)
        st["step"] += 1
        step = st["step"]
        if self.decoupled:
            if wd != 0:
                p.data *= 1 - lr * wd
        else:
            g = _decayed(p, g, wd)
        m, v = st["exp_avg"], st["exp_avg_sq"]
        # one scratch array, every other pass in place
        tmp = xp.multiply(g, g)
        tmp *= 1 - b2
        v *= b2
        v += tmp
        xp.multiply(g, 1 - b1, out=tmp)
        m *= b1
        m += tmp
        bc1 = 1 - b1**step
        bc2_sqrt = math.sqrt(1 - b2**step)
        if group["amsgrad"]:
            vmax = st["max_exp_avg_sq"]
            xp.maximum(vmax, v, out=vmax)
            xp.sqrt(vmax, out=tmp)
        else:
            xp.sqrt(v, out=tmp)
        tmp /= bc2_sqrt
        tmp += group["eps"]
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / bc1
        p.data -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay`` first."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


class Adamax(Optimizer):
    """Adamax (the infinity-norm Adam variant), PyTorch's rule (``eps`` inside the max)."""

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        _check_nonneg("lr", lr)
        _check_nonneg("eps", eps)
        _check_nonneg("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=_check_betas(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, st, group):
        xp = _xp(p.data)
        b1, b2 = group["betas"]
        if not st:
            st["step"] = 0
            st["exp_avg"] = xp.zeros_like(p.data)
            st["exp_inf"] = xp.zeros_like(p.data)
        st["step"] += 1
        g = _decayed(p, g, group["weight_decay"])
        m, u = st["exp_avg"], st["exp_inf"]
        m *= b1
        m += (1 - b1) * g
        xp.maximum(u * b2, xp.abs(g) + group["eps"], out=u)
        clr = group["lr"] / (1 - b1 ** st["step"])
        p.data -= clr * (m / u)
