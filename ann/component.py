"""Any ``ann.nn.Module`` as a :class:`neuro.Simulator` component (the coupling protocol).

:class:`ModuleComponent` feeds the values of its input ports (concatenated
in the order given) to the module each tick it runs, and splits the module's
output over its output ports. Three kinds of module are recognized:

* ``"stateless"``: ``module(x) -> y``, ``x`` ``(B, n_in)``, ``y`` ``(B, n_out)``
  (``Linear``, ``MLP``, ``Sequential``, ...);
* ``"cell"``: the one-step cells ``RNNCell``/``GRUCell`` (``module(x, h) -> h``) and
  ``LSTMCell`` (``module(x, (h, c)) -> (h, c)``); the output is ``h``;
* ``"step"``: modules with a recurrent ``step(x, state) -> (y, state)``
  (``Mamba``, ``RWKVBlock``).

The recurrent state is carried from tick to tick and cleared by ``reset``.
With ``every=k`` the module runs on ticks ``0, k, 2k, ...`` (on the input of
that tick) and its outputs hold in between. With an ``optimizer``, the
component also learns online: every ``train_every`` runs it takes one
optimizer step on ``loss(y, target)``, the target read from the input port
``"target"`` (the gradient stops at the carried state: truncated
backpropagation of one step). Without one, the module runs under
:func:`ann.no_grad`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from neuro.validation import check_int

from .nn.module import Module
from .nn.recurrent import LSTMCell, _CellBase
from .tensor import ANN_DTYPE, Tensor, no_grad

__all__ = ["ModuleComponent"]

_KINDS = ("auto", "stateless", "cell", "step")


def _ports(ports: Any, name: str) -> dict[str, int]:
    if not isinstance(ports, dict) or not ports:
        raise TypeError(f"{name} must be a non-empty dict of port name -> size, got {ports!r}")
    return {str(p): check_int(n, f"{name}[{p!r}]") for p, n in ports.items()}


def _detach(state):
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(s) for s in state)
    return state.detach() if isinstance(state, Tensor) else state


class ModuleComponent:
    """Run ``module`` inside a :class:`neuro.Simulator`.

    Parameters
    ----------
    module : ann.nn.Module
    inputs : dict port -> size; the ports' values ``(B, size)`` are concatenated in this order
        into the module's input ``(B, sum of sizes)``.
    outputs : dict port -> size; the module's output ``(B, sum of sizes)`` is split in this order.
    kind : ``"auto"`` (a ``step`` method: ``"step"``; an RNN/GRU/LSTM cell: ``"cell"``; else
        ``"stateless"``) or one of those.
    every : int, run the module on every ``every``-th tick (outputs hold in between).
    optimizer : an ``ann.optim`` optimizer over the module's parameters, to learn online; adds the
        input port ``"target"`` (size: the total output size).
    loss : ``(y, target) -> scalar Tensor``, default mean squared error.
    train_every : int, runs of the module per optimizer step (gradients accumulate in between).
    """

    def __init__(
        self,
        module: Module,
        inputs: dict,
        outputs: dict,
        *,
        kind: str = "auto",
        every: int = 1,
        optimizer: Any = None,
        loss: Callable | None = None,
        train_every: int = 1,
    ):
        if not isinstance(module, Module):
            raise TypeError(f"module must be an ann.nn.Module, got {type(module).__name__}")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.module = module
        self.inputs, self.outputs = _ports(inputs, "inputs"), _ports(outputs, "outputs")
        if optimizer is not None and "target" in self.inputs:
            raise ValueError("the input port 'target' is reserved for the training target when an optimizer is given")
        if kind == "auto":
            kind = "step" if callable(getattr(module, "step", None)) else ("cell" if isinstance(module, _CellBase) else "stateless")
        self.kind = kind
        self.every = check_int(every, "every")
        self.train_every = check_int(train_every, "train_every")
        self.optimizer = optimizer
        self.loss = loss if loss is not None else (lambda y, target: ((y - target) ** 2).mean())
        self.losses: list[float] = []
        params = list(module.parameters())
        self._dtype = params[0].dtype if params else np.dtype(ANN_DTYPE)
        self._state = None
        self._last: dict[str, np.ndarray] = {}
        self._tick = 0
        self._runs = 0

    @property
    def ports(self) -> dict:
        inputs = dict(self.inputs)
        if self.optimizer is not None:
            inputs["target"] = sum(self.outputs.values())
        return {"inputs": inputs, "outputs": dict(self.outputs)}

    def reset(self, batch_size: int, seed: Any = None) -> None:
        """Zero outputs and recurrent state for ``batch_size`` trials (``seed`` is unused: the module is deterministic)."""
        batch_size = check_int(batch_size, "batch_size")
        self._state = None
        self._tick = 0
        self._last = {p: np.zeros((batch_size, n)) for p, n in self.outputs.items()}

    def _forward(self, x: Tensor) -> Tensor:
        if self.kind == "stateless":
            return self.module(x)
        if self.kind == "step":
            y, self._state = self.module.step(x, self._state)
            return y
        state = self.module(x, self._state)
        self._state = state
        return state[0] if isinstance(self.module, LSTMCell) else state

    def step(self, t: Any, inputs: dict) -> dict:
        """One tick: ``inputs`` maps port names to ``(B, size)`` arrays (absent ports: zeros)."""
        B = next(iter(self._last.values())).shape[0] if self._last else None
        if B is None:
            raise RuntimeError("call reset(batch_size) before step")
        run = self._tick % self.every == 0
        self._tick += 1
        if not run:
            return {p: v.copy() for p, v in self._last.items()}
        parts = []
        for port, size in self.inputs.items():
            value = inputs.get(port)
            value = np.zeros((B, size)) if value is None else np.asarray(value)
            if value.shape != (B, size):
                raise ValueError(f"input {port!r} must have shape {(B, size)}, got {value.shape}")
            parts.append(value)
        x = Tensor(np.concatenate(parts, axis=1).astype(self._dtype, copy=False))
        if self.optimizer is None:
            with no_grad():
                y = self._forward(x)
        else:
            y = self._forward(x)
            self._learn(y, inputs.get("target"), B)
            self._state = _detach(self._state)
        y = np.asarray(y.detach().numpy(), dtype=np.float64)
        total = sum(self.outputs.values())
        if y.shape != (B, total):
            raise ValueError(f"the module's output has shape {y.shape}; the output ports need {(B, total)}")
        split = np.cumsum(list(self.outputs.values()))[:-1]
        self._last = dict(zip(self.outputs, np.split(y, split, axis=1)))
        return {p: v.copy() for p, v in self._last.items()}

    def _learn(self, y: Tensor, target: Any, B: int) -> None:
        if target is None:
            raise ValueError("a learning ModuleComponent needs its 'target' input port connected or fed")
        target = Tensor(np.asarray(target, dtype=y.dtype))
        loss = self.loss(y, target) / self.train_every
        loss.backward()
        self.losses.append(float(loss.item()) * self.train_every)
        self._runs += 1
        if self._runs % self.train_every == 0:
            self.optimizer.step()
            self.optimizer.zero_grad()

    def run(self, x: Any) -> np.ndarray:
        """Standalone use: ``x`` ``(B, T, n_in)`` -> ``y`` ``(B, T, n_out)`` tick by tick from a fresh state."""
        x = np.asarray(x, dtype=np.float64)
        n_in = sum(self.inputs.values())
        if x.ndim != 3 or x.shape[2] != n_in:
            raise ValueError(f"x must have shape (B, T, {n_in}), got {x.shape}")
        self.reset(x.shape[0])
        split = np.cumsum(list(self.inputs.values()))[:-1]
        steps = []
        for k in range(x.shape[1]):
            out = self.step(None, dict(zip(self.inputs, np.split(x[:, k], split, axis=1))))
            steps.append(np.concatenate([out[p] for p in self.outputs], axis=1))
        return np.stack(steps, axis=1)

    def __repr__(self) -> str:
        return (f"ModuleComponent({type(self.module).__name__}, kind={self.kind!r}, inputs={self.inputs}, "
                f"outputs={self.outputs}, every={self.every}{', learning' if self.optimizer is not None else ''})")
