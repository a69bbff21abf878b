"""Study ``all``: the quick variant of every registered study, with one report linking each.

The default of ``neuro run``: ``neuro run --quick`` is the toolkit's tour in
a few minutes. Each study runs in this process (they share imports and
compiled kernels) into ``studies/<name>/<timestamp>/`` under this run's
folder, with this run's seed; a study that fails is recorded with its error
and the others still run (the run then fails, naming them, after the last).
``results.json`` holds each study's folder, wall time and headline numbers;
``report.md`` links each study's own report.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from experiments.jsonio import read_json
from experiments.registry import all_experiments, experiment
from experiments.report import flatten_metrics

NAME = "all"


def _headline(folder: Path, limit: int = 4) -> dict[str, float]:
    """A few scalar results of a finished study (the first ``limit`` of its flattened results)."""
    path = folder / "results.json"
    if not path.exists():
        return {}
    metrics = flatten_metrics(read_json(path))
    return dict(list(metrics.items())[:limit])


def run(ctx) -> dict:
    from experiments.runner import run_experiment  # here: the runner imports the registry, which loads the studies

    names = [name for name in all_experiments() if name != NAME and not name.startswith("_")]  # "_x": private/test
    studies: dict[str, dict] = {}
    for name in ctx.progress(names, desc="studies"):
        start = time.perf_counter()
        try:
            folder = run_experiment(name, out=ctx.out_dir / "studies", seed=ctx.seed, quick=True)
        except Exception as exc:  # noqa: BLE001 - recorded; the other studies still run
            studies[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc(), "seconds": time.perf_counter() - start}
            continue
        studies[name] = {"ok": True, "folder": folder.relative_to(ctx.out_dir).as_posix(),
                         "seconds": time.perf_counter() - start, "headline": _headline(folder)}
    failed = [name for name, s in studies.items() if not s["ok"]]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(names)} studies failed: "
                           + "; ".join(f"{n}: {studies[n]['error']}" for n in failed))
    return {"studies": studies, "total_seconds": sum(s["seconds"] for s in studies.values())}


def report(run_data, folder) -> str:
    """report.md's section: one line per study, linking its own report, with its time and headline numbers."""
    results = run_data.done[0].results
    lines = ["| study | report | seconds | headline results |", "|---|---|---:|---|"]
    for name, s in results["studies"].items():
        link = f"[report]({s['folder']}/report.md)"
        headline = ", ".join(f"{k} = {v:.4g}" for k, v in s["headline"].items())
        lines.append(f"| `{name}` | {link} | {s['seconds']:.1f} | {headline} |")
    lines.append("")
    lines.append(f"All {len(results['studies'])} studies in {results['total_seconds']:.0f} s (quick variants).")
    return "\n".join(lines)


experiment(NAME, "every study's quick variant, and one report linking each (the default of `neuro run`)",
           report=report)(run)
