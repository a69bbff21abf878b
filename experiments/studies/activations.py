"""Study ``activations``: every activation in :mod:`ann.activations` and its derivative.

Each registered activation is evaluated on a grid of x in [-7, 7] and
differentiated with ``ann``'s reverse-mode autograd (float64). Scalar views of
the non-elementwise ones:

* normalizing (``softmax``, ``log_softmax``): the first output of ``f([x, 0])``
  (for softmax that is ``sigmoid(x)``);
* gated (``glu``, ``swiglu``, ...): ``f([x, x])``, i.e. ``x * act(x)``, and its total derivative.

Returns the values and derivatives at a few points (``results.json``) and
saves the curves on the grid (``curves.npz``); the report draws
``figures/activations.png`` (and ``.svg``; one panel per activation: f solid,
f' dashed) from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ann import Tensor, activations, concatenate, stack
from experiments.config import param
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


@dataclass(frozen=True)
class Config:
    """The x grid the curves are drawn on."""

    grid_points: int = param(1401, min=3, help="points of the x grid")
    x_max: float = param(7.0, min=0.5, max=50.0, help="the grid spans [-x_max, x_max]")

    @classmethod
    def quick(cls) -> "Config":
        return cls(grid_points=141)


def _figure(curves: dict, names, folder) -> str:
    from matplotlib.figure import Figure

    from experiments.report import save_figure

    grid = curves["grid"]
    cols = 6
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.2 * rows))
    ticks = np.round(np.linspace(-grid[-1], grid[-1], 5), 1)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(grid, curves[f"{name}.value"], lw=1.5, label="f")
        ax.plot(grid, curves[f"{name}.derivative"], lw=1.2, ls="--", label="f'")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(ticks)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.04, top=0.96, wspace=0.25, hspace=0.45)
    return save_figure(fig, folder, "activations")


def report(run, folder) -> str:
    """report.md's section: the figure of the first finished point's saved curves, and the table at the points."""
    first = run.done[0]
    table = first.results["activations"]
    lines = ["| activation | kind | " + " | ".join(f"f({x:g}) | f'({x:g})" for x in POINTS[::3]) + " |",
             "|---|---|" + "---|---|" * len(POINTS[::3])]
    for name, entry in table.items():
        cells = [f"{entry['value'][i]:.4g} | {entry['derivative'][i]:.4g}" for i in range(0, len(POINTS), 3)]
        lines.append(f"| {name} | {entry['kind']} | " + " | ".join(cells) + " |")
    return ("## Activations\n\n" + _figure(first.load_arrays("curves.npz"), list(table), folder) + "\n\n"
            + "\n".join(lines) + "\n")


@experiment("activations", "every registered activation and its autograd derivative: a figure and a table",
            config=Config, report=report)
def run(ctx) -> dict:
    config = ctx.config
    grid = np.linspace(-config.x_max, config.x_max, config.grid_points)
    curves = {"grid": grid}
    table = {}
    for name in ctx.progress(activations.names(), desc="activations"):
        curves[f"{name}.value"], curves[f"{name}.derivative"] = value_and_derivative(name, grid)
        value, deriv = value_and_derivative(name, np.array(POINTS))
        table[name] = {"kind": activations.spec(name).kind, "value": value, "derivative": deriv}
    ctx.save_arrays("curves.npz", **curves)
    return {
        "points": POINTS,
        "grid": {"start": float(grid[0]), "stop": float(grid[-1]), "n": int(grid.size)},
        "n_activations": len(table),
        "activations": table,
        "data": "curves.npz",
    }
