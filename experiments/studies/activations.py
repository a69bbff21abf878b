"""Study ``activations``: every activation in :mod:`ann.activations` and its derivative.

Each registered activation is evaluated on a grid of x in [-7, 7] and
differentiated with ``ann``'s reverse-mode autograd (float64). Scalar views of
the non-elementwise ones:

* normalizing (``softmax``, ``log_softmax``): the first output of ``f([x, 0])``
  (for softmax that is ``sigmoid(x)``);
* gated (``glu``, ``swiglu``, ...): ``f([x, x])``, i.e. ``x * act(x)``, and its total derivative.

Writes ``activations.png`` (one panel per activation: f solid, f' dashed) and
returns the values and derivatives at a few points (``results.json``).
"""

from __future__ import annotations

import numpy as np

from ann import Tensor, activations, concatenate, stack
from experiments.registry import experiment

POINTS = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]


def scalar_view(name: str):
    """``g(x)`` mapping a ``(n,)`` Tensor to ``(n,)``: the activation as a function of one variable (see module doc)."""
    spec = activations.spec(name)
    fn = activations.get(name)
    if spec.kind == "elementwise":
        return fn
    if spec.kind == "normalizing":
        return lambda x: fn(stack([x, x * 0.0], axis=1), axis=1)[:, 0]
    return lambda x: fn(concatenate([x.reshape(-1, 1), x.reshape(-1, 1)], axis=1), axis=1)[:, 0]


def value_and_derivative(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``g(x)`` and ``g'(x)`` on the points ``x`` (1-D), the derivative from autograd."""
    t = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    y = scalar_view(name)(t)
    y.sum().backward()  # elementwise in x, so the gradient of the sum is g'(x)
    return y.numpy().copy(), t.grad.copy()


def _plot(path, grid: np.ndarray, curves: dict) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(curves)
    cols = 6
    rows = -(-n // cols)
    fig = Figure(figsize=(2.6 * cols, 2.2 * rows))
    FigureCanvasAgg(fig)
    for i, (name, (y, dy)) in enumerate(curves.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(grid, y, lw=1.5, label="f")
        ax.plot(grid, dy, lw=1.2, ls="--", label="f'")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([-6, -3, 0, 3, 6])
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.04, top=0.96, wspace=0.25, hspace=0.45)
    fig.savefig(path, dpi=80 if len(grid) < 300 else 110)


@experiment("activations", "every registered activation and its autograd derivative: a figure and a table")
def run(ctx) -> dict:
    grid = np.linspace(-7.0, 7.0, 141 if ctx.quick else 1401)
    curves = {}
    table = {}
    for name in activations.names():
        curves[name] = value_and_derivative(name, grid)
        value, deriv = value_and_derivative(name, np.array(POINTS))
        table[name] = {"kind": activations.spec(name).kind, "value": value, "derivative": deriv}
    figure = ctx.out_dir / "activations.png"
    _plot(figure, grid, curves)
    return {
        "points": POINTS,
        "grid": {"start": float(grid[0]), "stop": float(grid[-1]), "n": int(grid.size)},
        "n_activations": len(table),
        "activations": table,
        "figure": figure.name,
    }
