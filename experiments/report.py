"""A run's summary, figures and report, built from its saved data only.

:func:`build_report` reads ``config.json`` and the points' ``results.json``
(and any arrays they saved) and writes ``summary.json``, ``summary.csv``,
``figures/*.png`` and ``*.svg`` and ``report.md``. It reruns nothing and
writes the same bytes every time for the same saved data, so
``neuro report RUN_DIR`` rebuilds a report identically.

The summary groups the points by their swept values and gives, for every
number in the results (nested dicts flattened into ``a/b/c`` names; booleans
count as 0/1; lists are data, not summarized), its mean, standard deviation
(over seeds, ``ddof=0``), min, max and the count of seeds.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .jsonio import read_json, write_json, write_text_atomic

__all__ = ["RunData", "Point", "build_report", "flatten_metrics", "save_figure"]

#: panels in the generic metrics figure, and rows in report.md's table (summary.csv has everything)
MAX_PANELS = 12
MAX_ROWS = 80
MAX_COLUMNS = 8


@dataclass(frozen=True)
class Point:
    """One point of a run as saved: its seed, swept values, full config, results (None if not done) and folder."""

    key: str
    seed: int
    overrides: dict
    config: dict
    results: dict | None
    dir: Path
    error: str | None = None

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        """The arrays the point saved with ``ctx.save_arrays(name, ...)``."""
        with np.load(self.dir / name, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


@dataclass(frozen=True)
class RunData:
    """A run folder's saved data: ``config`` (config.json) and its ``points``."""

    dir: Path
    config: dict
    points: list

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunData":
        from .folders import point_valid

        run_dir = Path(run_dir)
        try:
            config = read_json(run_dir / "config.json")
            entries = config["points"]
        except (OSError, ValueError, KeyError):
            raise ValueError(f"{str(run_dir)!r} is not a run folder (no readable config.json)") from None
        points = []
        for e in entries:
            folder = run_dir / e["dir"]
            ok = point_valid(folder, e["key"])
            failed = run_dir / "points" / f"{e['key']}.failed.json"
            error = read_json(failed).get("error") if (not ok and failed.is_file()) else None
            meta = read_json(folder / "point.json") if ok else {}
            points.append(Point(e["key"], e["seed"], e["overrides"], meta.get("config", {}),
                                read_json(folder / "results.json") if ok else None, folder, error))
        return cls(run_dir, config, points)

    @property
    def done(self) -> list:
        return [p for p in self.points if p.results is not None]

    def groups(self) -> list[tuple[dict, list]]:
        """The points grouped by swept values (in grid order): ``[(overrides, [points]), ...]``."""
        out: dict[str, tuple[dict, list]] = {}
        for p in self.points:
            out.setdefault(json.dumps(p.overrides, sort_keys=True), (p.overrides, []))[1].append(p)
        return list(out.values())


def flatten_metrics(results: Any, prefix: str = "") -> dict[str, float]:
    """The numbers in ``results`` by path (``a/b/c``); booleans as 0/1, lists and text skipped."""
    out: dict[str, float] = {}
    if isinstance(results, dict):
        for k, v in results.items():
            out.update(flatten_metrics(v, f"{prefix}{k}/"))
    elif isinstance(results, (bool, int, float)) and prefix:
        out[prefix[:-1]] = float(results)
    return out


def _stats(values: list[float]) -> dict:
    a = np.array(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return {"n": int(a.size), "mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()),
                "max": float(a.max())}


def summarize(run: RunData) -> list[dict]:
    """One entry per group: its swept values, seeds done and failed, and each metric's statistics over seeds."""
    summary = []
    for overrides, points in run.groups():
        done = [p for p in points if p.results is not None]
        per_metric: dict[str, list[float]] = {}
        for p in done:
            for k, v in flatten_metrics(p.results).items():
                per_metric.setdefault(k, []).append(v)
        summary.append({"overrides": overrides, "seeds": [p.seed for p in done],
                        "failed_seeds": [p.seed for p in points if p.results is None and p.error is not None],
                        "missing_seeds": [p.seed for p in points if p.results is None and p.error is None],
                        "metrics": {k: _stats(v) for k, v in per_metric.items()}})
    return summary


def _csv(summary: list[dict], axes: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*axes, "metric", "n", "mean", "std", "min", "max"])
    for entry in summary:
        for metric, s in entry["metrics"].items():
            writer.writerow([*(entry["overrides"].get(a, "") for a in axes), metric, s["n"],
                             *(repr(s[k]) for k in ("mean", "std", "min", "max"))])
    return buf.getvalue()


def save_figure(fig, folder: Path, name: str) -> str:
    """Save a matplotlib ``Figure`` as ``folder/name.png`` and ``.svg`` (same bytes each time); returns markdown embedding the PNG."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    folder.mkdir(exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": "neurokit-sim", "svg.fonttype": "path"}):
        fig.savefig(folder / f"{name}.png", dpi=100, metadata={"Software": None})
        fig.savefig(folder / f"{name}.svg", metadata={"Date": None, "Creator": None})
    return f"![{name}]({folder.name}/{name}.png)"


def _label(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "all"


def metrics_figure(run: RunData, summary: list[dict], folder: Path) -> str | None:
    """Mean +- std over seeds (dots: each seed) of the first metrics, per group of swept values; None without a sweep
    (the summary table says it all)."""
    if len(summary) < 2 or len(run.done) < 2:
        return None
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(k for e in summary for k in e["metrics"]))[:MAX_PANELS]
    if not names:
        return None
    axes = list(run.config["grid"]["axes"])
    numeric = len(axes) == 1 and all(isinstance(e["overrides"][axes[0]], (int, float)) for e in summary)
    xs = [e["overrides"][axes[0]] if numeric else i for i, e in enumerate(summary)]
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows))
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        for x, entry, (_, points) in zip(xs, summary, run.groups()):
            done = [p for p in points if p.results is not None]
            vals = [flatten_metrics(p.results).get(name, math.nan) for p in done]
            ax.plot([x] * len(vals), vals, ".", color="0.6", ms=4)
            s = entry["metrics"].get(name)
            if s is not None:
                ax.errorbar([x], [s["mean"]], yerr=[s["std"]], fmt="o", color="C0", capsize=3)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        if numeric:
            if min(xs) > 0 and max(xs) >= 10 * min(xs):  # e.g. learning rates 1e-3, 1e-2, 1e-1
                ax.set_xscale("log")
            ax.set_xticks(xs, [str(x) for x in xs], fontsize=7)
            ax.minorticks_off()
            ax.set_xlabel(axes[0], fontsize=8)
        else:
            ax.set_xticks(xs, [_label(e["overrides"]) for e in summary], rotation=30, ha="right", fontsize=6)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.2 if not numeric else 0.12, hspace=0.8, wspace=0.4)
    return save_figure(fig, folder, "metrics")


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _table(summary: list[dict]) -> str:
    names = list(dict.fromkeys(k for e in summary for k in e["metrics"]))
    shown = summary[:MAX_COLUMNS]
    single = all(len(e["seeds"]) <= 1 for e in shown)
    head = "| metric | " + " | ".join(_label(e["overrides"]) for e in shown) + " |\n"
    head += "|---" * (len(shown) + 1) + "|\n"
    lines = []
    for name in names[:MAX_ROWS]:
        cells = []
        for e in shown:
            s = e["metrics"].get(name)
            cells.append("-" if s is None else _fmt(s["mean"]) if single else f"{_fmt(s['mean'])} ± {_fmt(s['std'])}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    more = []
    if len(names) > MAX_ROWS or len(summary) > MAX_COLUMNS:
        more.append(f"\n(first {min(len(names), MAX_ROWS)} of {len(names)} metrics and {len(shown)} of "
                    f"{len(summary)} groups; all in `summary.csv`)")
    return head + "\n".join(lines) + "\n" + "".join(more)


def _environment_md(config: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in config["versions"].items() if v)
    git = config.get("git")
    commit = f"{git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}" if git else "not a git checkout"
    sessions = config.get("sessions", [])
    lines = [f"- toolkit: {config['toolkit']['name']} {config['toolkit']['version']}, commit {commit}",
             f"- {versions}; backend {config['backend']}; host {config['host']} ({config['cpu_count']} cores)"]
    for s in sessions:
        ex = s["executor"]
        lines.append(f"- started {s['started_utc']}, {s['duration_s']} s, executor {ex['kind']} "
                     f"({ex.get('workers', 1)} workers)")
    return "\n".join(lines)


def build_report(run_dir: str | Path) -> Path:
    """Write ``summary.json``, ``summary.csv``, the figures and ``report.md`` of ``run_dir``; returns report.md's path."""
    from .registry import get

    run = RunData.load(run_dir)
    c = run.config
    summary = summarize(run)
    axes = list(c["grid"]["axes"])
    write_json(run.dir / "summary.json", {"experiment": c["experiment"], "axes": axes, "groups": summary})
    write_text_atomic(run.dir / "summary.csv", _csv(summary, axes))
    figures = run.dir / "figures"
    parts = [f"# {c['experiment']}\n\n{c['summary']}\n"]
    failed = [p for p in run.points if p.results is None]
    parts.append(f"{len(run.done)} of {len(run.points)} points done"
                 + (f", {len(failed)} not done (failed or missing)" if failed else "")
                 + f"; seeds {c['grid']['seeds']}" + (f"; swept: {', '.join(axes)}" if axes else "")
                 + (" (quick settings)" if c["quick"] else "") + ".\n")
    parts.append("## Config\n\n```json\n" + json.dumps(c["config"], indent=2) + "\n```\n")
    try:
        exp = get(c["experiment"])
    except KeyError:
        exp = None
    if exp is not None and exp.report is not None and run.done:
        section = exp.report(run, figures)
        if section:
            parts.append(section.rstrip() + "\n")
    if summary and any(e["metrics"] for e in summary):
        parts.append("## Summary (mean ± std over seeds)\n\n" + _table(summary))
    generic = metrics_figure(run, summary, figures)
    if generic:
        parts.append("## Metrics\n\n" + generic + "\n")
    if failed:
        parts.append("## Points not done\n\n" + "\n".join(
            f"- `{p.key}` seed {p.seed} {_label(p.overrides)}: {p.error or 'missing'}" for p in failed) + "\n")
    parts.append("## Environment\n\n" + _environment_md(c) + "\n")
    path = run.dir / "report.md"
    write_text_atomic(path, "\n".join(parts))
    return path
