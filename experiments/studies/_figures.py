"""Figure helpers shared by the studies: matplotlib's object API on the Agg canvas (no pyplot, no display)."""

from __future__ import annotations

from pathlib import Path


def figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """A new ``(fig, axes)`` of ``width x height`` inches; ``axes`` is a flat list of ``rows * cols`` axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(rows * cols)]


def save(fig, out_dir: Path, name: str, names: list) -> None:
    """Write ``fig`` as ``out_dir / name`` (PNG, 100 dpi) and append ``name`` to ``names``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(Path(out_dir) / name, dpi=100)
    names.append(name)
