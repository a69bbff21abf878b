"""The CUBA and COBA networks of Brette et al. (2007), 1 s: our engine vs Brian2-cython.

The networks are those of ``examples/brette2007.py`` (4000 LIF neurons,
3200 E / 800 I, p = 0.02; CUBA current-based, COBA conductance-based);
Brian2 runs them as a Brian2 user writes them (one NeuronGroup, its own
connectivity), with the cython target. Brian2's networks are built once and
``restore()``-d before each run; its compile time (first run) is excluded.

Results:
* single trial: ours (``net.reset(1); net.run(1000)``) vs one Brian2-cython
  ``run(1 * second)``, alternated (target: ratio <= 0.2);
* 8 batched trials: ours (``net.reset(8)``) vs 8 x the median Brian2-cython
  single run (target: >= 10x, ratio <= 0.1);
* firing statistics over seeds, ours and Brian2's (each seed a new network
  in both): mean rate (Hz) and mean CV of the interspike intervals, printed
  and stored in the single-trial result's ``params``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from .harness import Result, compare

_EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "brette2007.py"


def networks():
    """The module ``examples/brette2007.py`` (the networks, Brian2 scripts and statistics)."""
    spec = importlib.util.spec_from_file_location("brette2007", _EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ours(nets, kind, batch, duration):
    net, mons = nets.build(kind, seed=0)

    def run():
        net.reset(batch, seed=1)
        net.run(duration)
        return mons

    return run


def _brian2(nets, kind, duration, seed=0):
    import brian2 as b2

    with _cython():
        b2net, mon = nets.brian2_network(kind, seed)
        b2net.store()

    def run():
        with _cython():
            b2net.restore()
            b2net.run(duration * b2.ms)
        return mon

    return run


class _cython:
    def __enter__(self):
        import brian2 as b2

        self.previous = b2.prefs.codegen.target
        b2.prefs.codegen.target = "cython"

    def __exit__(self, *exc):
        import brian2 as b2

        b2.prefs.codegen.target = self.previous


def statistics(nets, kind: str, seeds, duration: float) -> dict:
    """Rate and CV of ISI of ours and Brian2-cython's network for each seed: ``{"neuro": [...], "brian2": [...]}``."""
    import brian2 as b2

    out = {"neuro": [], "brian2": []}
    for seed in seeds:
        net, mons = nets.build(kind, seed=seed)
        net.run(duration)
        out["neuro"].append(nets.firing_statistics(*nets.neuro_spikes(mons), duration))
        with _cython():
            b2net, mon = nets.brian2_network(kind, seed)
            b2net.run(duration * b2.ms)
        out["brian2"].append(nets.firing_statistics(*nets.brian2_spikes(mon), duration))
    return out


def run(quick: bool = False) -> list[Result]:
    nets = networks()
    duration = 1000.0
    repeats = 2 if quick else 3
    seeds = range(1) if quick else range(3)
    B = 8
    results = []
    for kind in nets.KINDS:
        t0 = time.perf_counter()
        cy = _brian2(nets, kind, duration)
        cy()
        first = time.perf_counter() - t0
        params = {"neurons": nets.N_E + nets.N_I, "p": nets.P_CONNECT, "duration_ms": duration, "dt_ms": nets.DT,
                  "brian2_cython_build_and_first_run_s": round(first, 2)}
        single = compare(f"{kind.upper()} 4000 x 1 trial vs brian2-cython", _ours(nets, kind, 1, duration), cy,
                         ours_label="neuro (numba)", peer_label="brian2 cython run()", repeats=repeats,
                         params=params, target="ratio <= 0.2")
        results.append(single)
        ours_b = _ours(nets, kind, B, duration)
        ours_b()  # warm-up
        times = []
        for _ in range(max(1, repeats - 1)):
            t0 = time.perf_counter()
            ours_b()
            times.append(time.perf_counter() - t0)
        tb = float(np.median(times))
        peer = B * single.peer_median_s
        results.append(Result(f"{kind.upper()} 4000 x {B} batched trials vs {B} brian2-cython runs", f"neuro {B} trials",
                              f"brian2 cython, {B} x median run()", tb, peer, tb / peer, len(times),
                              dict(params, batch=B, speedup=round(peer / tb, 1)), ">= 10x (ratio <= 0.1)",
                              single.machine, single.date, (min(times), max(times))))
        stats = statistics(nets, kind, seeds, duration)
        summary = {f"{engine}_{key}": [round(s[key], 3) for s in stats[engine]]
                   for engine in ("neuro", "brian2") for key in ("rate", "cv")}
        mean = {k: round(float(np.mean(v)), 3) for k, v in summary.items()}
        single.params.update(summary, seeds=list(seeds), **{f"mean_{k}": v for k, v in mean.items()})
        print(f"{kind.upper()} firing statistics over seeds {list(seeds)}: neuro {mean['neuro_rate']:.2f} Hz, "
              f"CV {mean['neuro_cv']:.3f}; brian2-cython {mean['brian2_rate']:.2f} Hz, CV {mean['brian2_cv']:.3f} "
              f"(per seed: {summary})", flush=True)
    return results
