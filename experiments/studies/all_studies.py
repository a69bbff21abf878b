"""Study ``all``: the quick variant of every registered study, with one report linking each.

The default of ``neuro run``: ``neuro run --quick`` is the toolkit's tour in
a few minutes. Each study runs in this process (they share imports and
compiled kernels) into ``studies/<name>/<timestamp>/`` under this run's
folder, with this run's seed; a study that fails is recorded with its error
and the others still run (the run then fails, naming them, after the last).
``results.json`` holds each study's folder and wall time; ``report.md``
links each study's own report (where its figures and numbers are).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

from experiments.registry import all_experiments, experiment

NAME = "all"


@dataclass(frozen=True)
class Config:
    """``all`` has no parameters of its own (a ``--set`` key is an error); each study runs its quick variant."""


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
                         "seconds": time.perf_counter() - start}
    failed = [name for name, s in studies.items() if not s["ok"]]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(names)} studies failed: "
                           + "; ".join(f"{n}: {studies[n]['error']}" for n in failed))
    return {"studies": studies, "total_seconds": sum(s["seconds"] for s in studies.values())}


def report(run_data, folder) -> str:
    """report.md's section: one line per study, its summary, a link to its own report and its wall time."""
    from experiments.registry import get

    results = run_data.done[0].results
    lines = ["| study | what it shows | report | seconds |", "|---|---|---|---:|"]
    for name, s in results["studies"].items():
        lines.append(f"| `{name}` | {get(name).summary} | [report]({s['folder']}/report.md) | {s['seconds']:.1f} |")
    lines.append("")
    lines.append(f"All {len(results['studies'])} studies in {results['total_seconds']:.0f} s (quick variants).")
    return "\n".join(lines)


experiment(NAME, "every study's quick variant, and one report linking each (the default of `neuro run`)",
           config=Config, report=report)(run)
