"""1000 LIF neurons, 10% random connectivity, 1 s at dt = 0.1 ms: our engine vs Brian2 (numpy, cython).

The network (Vogels-Abbott-like sizes, current-based): 800 excitatory and
200 inhibitory LIF neurons, each pair connected with probability 0.1
(~100,000 static synapses, delay 1.5 ms), a background current above
threshold and random initial voltages, so that the network fires
asynchronously. Brian2 runs the very same network through the bridge
(:mod:`neuro.brian2`); its cython compile time is excluded from the timings
(one warm-up run compiles; it is reported separately).

Results: single trial, ours vs Brian2-cython and Brian2-numpy (target: at
least as fast as cython, ratio <= 1); 32 batched trials vs 32 x Brian2-cython
runs, compared in neuron-steps per second (target: >= 10x).
"""

from __future__ import annotations

import time

import numpy as np

from neuro import LIF, Network

from .harness import Result, compare, median_time

N_E, N_I, P, DT = 800, 200, 0.1, 0.1


def build(seed: int = 0, duration: float = 1000.0) -> tuple[Network, object]:
    net = Network(dt=DT, seed=seed)
    model = dict(tau_m=20.0, R=1.0, E_L=0.0, v_th=15.0, v_reset=0.0, t_ref=2.0, I_bg=16.0, tau_e=5.0, tau_i=10.0)
    E = net.population(N_E, LIF(**model), name="E", v_init=("uniform", 0.0, 15.0))
    I = net.population(N_I, LIF(**model), name="I", v_init=("uniform", 0.0, 15.0))
    for pre, w in ((E, 0.3), (I, -1.5)):
        for post in (E, I):
            net.connect(pre, post, "fixed_probability", p=P, weight=w, delay=1.5)
    mon = net.monitor_spikes(E)
    return net, mon


def _ours(batch: int, duration: float):
    net, mon = build()

    def run():
        net.reset(batch, seed=1)
        net.run(duration)
        return mon

    return run


def _brian2(target: str, duration: float):
    """A callable running the network in Brian2 (built once; ``restore()`` before each run)."""
    from neuro import brian2 as bridge
    import brian2 as b2

    net, _ = build()
    net.reset(1, seed=1)
    with bridge._target(target):
        b2net, *_ = bridge.build_trial(net, 0, bridge.source_spikes(net, 0))
        b2net.store()

    def run(d=duration):
        with bridge._target(target):
            b2net.restore()
            b2net.run(d * b2.ms)

    return run


def run(quick: bool = False) -> list[Result]:
    duration = 200.0 if quick else 1000.0
    repeats = 2 if quick else 3
    steps = int(round(duration / DT))
    params = {"neurons": N_E + N_I, "p": P, "duration_ms": duration, "dt_ms": DT}
    results = []
    # Brian2-cython: the first run compiles (unless Brian2's disk cache has the code); we report the
    # first run's excess over a steady run as the compile time, and exclude it from every comparison.
    t0 = time.perf_counter()
    cy = _brian2("cython", duration)
    cy()
    first = time.perf_counter() - t0
    steady = median_time(cy, 1)
    # Brian2 spends a fixed setup per run() call (code objects, before_run): measured with a 1-step run,
    # subtracted in the "simulation only" comparison, the strictest one for us.
    setup = median_time(lambda: cy(DT), repeats)
    params_c = dict(params, brian2_cython_first_run_s=round(first, 2), brian2_cython_compile_s=round(first - steady, 2),
                    brian2_cython_setup_per_run_s=round(setup, 3))
    ours1 = _ours(1, duration)
    results.append(compare("spiking LIF 1000 x 1 trial vs brian2-cython", ours1, cy,
                           ours_label="neuro (numba)", peer_label="brian2 cython run()", repeats=repeats,
                           params=params_c, target="ratio <= 1 (at least as fast as Brian2-cython)"))
    r = compare("spiking LIF 1000 x 1 trial vs brian2-cython simulation only", ours1, cy,
                ours_label="neuro (numba)", peer_label="brian2 cython run() minus setup", repeats=repeats,
                params=params_c, target="ratio <= 1")
    r.peer_median_s -= setup
    r.ratio = r.ours_median_s / r.peer_median_s
    results.append(r)
    results.append(compare("spiking LIF 1000 x 1 trial vs brian2-numpy", ours1, _brian2("numpy", duration),
                           ours_label="neuro (numba)", peer_label="brian2 numpy run()", repeats=max(1, repeats - 1),
                           params=params))
    B = 32
    sim_only = r.peer_median_s  # Brian2-cython seconds per trial, setup excluded
    ours_b = median_time(_ours(B, duration), 1 if quick else 2)
    n_steps = (N_E + N_I) * steps
    r = Result(f"spiking LIF 1000 x {B} batched trials vs brian2-cython (per neuron-step)", f"neuro {B} trials",
               f"brian2 cython, {B} x (run() minus setup)", ours_b, B * sim_only, ours_b / (B * sim_only), 1,
               dict(params, batch=B, ours_neuron_steps_per_s=B * n_steps / ours_b,
                    brian2_cython_neuron_steps_per_s=n_steps / sim_only,
                    speedup=round(B * sim_only / ours_b, 1)),
               ">= 10x Brian2-cython neuron-steps/s (ratio <= 0.1)", results[0].machine, results[0].date)
    results.append(r)
    return results
