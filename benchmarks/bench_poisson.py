"""Poisson-driven LIF networks: one trial and batches against Brian2-cython, and the cost per synaptic event.

Two studies, both with every spike recorded (spike monitors on all
populations and inputs: the case a user runs):

* **The 1000-neuron network** of the performance issue: 800 excitatory and
  200 inhibitory LIF neurons, pairs connected with probability 0.1 (delay
  1.5 ms), driven by 1000 Poisson inputs at 20 Hz (probability 0.1 onto
  each neuron), firing at about 15 Hz; 1 s at dt = 0.1 ms. Ours, one trial,
  against one Brian2-cython run of the same network (built by the bridge,
  alternated; Brian2's compile excluded), target ratio <= 0.2; 32 batched
  trials against 32 Brian2-cython runs, target >= 10x the throughput.
* **Scaling** at fixed in-degree: N = 1k ... 100k neurons (80% E), each
  receiving 100 recurrent synapses and 50 from N/10 Poisson inputs at
  20 Hz. Ours, one trial: ns per synaptic event (run time / events, with
  events counted from the recorded spikes and the synapses per row) and
  ns per neuron-step; target: within 1.5x of each other across sizes. All
  sizes are built first and run in turn (5 rounds, medians), so that the
  machine's slow phases fall on every size alike. Also
  the marginal cost of an event: the time saved per event saved when the
  same network is driven at half the input rate (same neuron-steps).
  Reported beside a memory-bandwidth bound (16 bytes streamed per event,
  the target index and weight, at the bandwidth of a large NumPy add).
  At 100k neurons also 8 batched trials, and both against Brian2-cython.
"""

from __future__ import annotations

import time

import numpy as np

from experiments.timing import alternate
from neuro import LIF, Network

from .harness import Result, compare, machine, median_time

DT = 0.1
MODEL = dict(tau_m=20.0, R=1.0, E_L=0.0, v_th=15.0, v_reset=0.0, t_ref=2.0, I_bg=0.0, tau_e=5.0, tau_i=10.0)


def build_1k(seed: int = 0) -> Network:
    """The issue's network: 1000 LIF (p = 0.1), 1000 Poisson inputs at 20 Hz (p = 0.1), spikes recorded."""
    net = Network(dt=DT, seed=seed)
    E = net.population(800, LIF(**MODEL), name="E", v_init=("uniform", 0.0, 15.0))
    I = net.population(200, LIF(**MODEL), name="I", v_init=("uniform", 0.0, 15.0))
    P = net.poisson(1000, rates=20.0, name="P")
    for post in (E, I):
        net.connect(P, post, "fixed_probability", p=0.1, weight=1.75, delay=1.5)
        net.connect(E, post, "fixed_probability", p=0.1, weight=0.3, delay=1.5)
        net.connect(I, post, "fixed_probability", p=0.1, weight=-1.5, delay=1.5)
    for src in (E, I, P):
        net.monitor_spikes(src)
    return net


def build_scaled(n: int, seed: int = 0, rate: float = 20.0) -> Network:
    """``n`` LIF neurons (80% E), fixed in-degree 100 recurrent (80 E, 20 I) and 50 from n/10 Poisson inputs (Hz)."""
    net = Network(dt=DT, seed=seed)
    n_e = int(0.8 * n)
    E = net.population(n_e, LIF(**MODEL), name="E", v_init=("uniform", 0.0, 15.0))
    I = net.population(n - n_e, LIF(**MODEL), name="I", v_init=("uniform", 0.0, 15.0))
    P = net.poisson(max(100, n // 10), rates=rate, name="P")
    for post in (E, I):
        net.connect(P, post, "fixed_indegree", k=50, weight=3.5, delay=1.5)
        net.connect(E, post, "fixed_indegree", k=80, weight=0.3, delay=1.5)
        net.connect(I, post, "fixed_indegree", k=20, weight=-1.5, delay=1.5)
    for src in (E, I, P):
        net.monitor_spikes(src)
    return net


def synaptic_events(net: Network) -> int:
    """Events delivered in the last run: each recorded spike times its row's synapses (all trials)."""
    total = 0
    for mon in net.monitors:
        for proj in net.projections:
            if proj.pre is mon.source:
                out_degree = np.diff(proj.indptr)
                total += int((mon.count * out_degree).sum())
    return total


def _ours(net: Network, batch: int, duration: float):
    def run():
        net.reset(batch, seed=1)
        net.run(duration)

    return run


def _brian2(net: Network, duration: float):
    """One trial of ``net`` in Brian2-cython (built once by the bridge; ``restore()`` before each run)."""
    import brian2 as b2

    from neuro import brian2 as bridge

    net.reset(1, seed=1)
    with bridge._target("cython"):
        b2net, *_ = bridge.build_trial(net, 0, bridge.source_spikes(net, 0))
        b2net.store()

    def run():
        with bridge._target("cython"):
            b2net.restore()
            b2net.run(duration * b2.ms)

    return run


def bandwidth_gbs() -> float:
    """Memory bandwidth seen by a large NumPy add (bytes read and written / s), GB/s."""
    a, b = np.ones(1 << 24), np.ones(1 << 24)
    c = np.empty_like(a)
    np.add(a, b, out=c)
    t = median_time(lambda: np.add(a, b, out=c), 5)
    return 3 * a.nbytes / t / 1e9


def _batched(name, net, ours_b, brian_single, B, params, target):
    """Result of ``B`` batched trials (time ``ours_b``) against ``B`` single Brian2 runs (median ``brian_single``)."""
    ratio = ours_b / (B * brian_single)
    return Result(name, f"neuro {B} trials", f"brian2 cython, {B} x run()", ours_b, B * brian_single, ratio, 1,
                  dict(params, batch=B, speedup=round(1 / ratio, 1)), target, machine(),
                  time.strftime("%Y-%m-%d"))


def run(quick: bool = False) -> list[Result]:
    duration = 200.0 if quick else 1000.0
    repeats = 2 if quick else 5
    results = []

    # the 1000-neuron network
    net = build_1k()
    _ours(net, 1, 10.0)()  # compile
    b2 = _brian2(build_1k(), duration)
    b2()  # compile (excluded)
    params = {"neurons": 1000, "poisson_inputs": 1000, "duration_ms": duration}
    r = compare("Poisson-driven LIF 1000, 1 trial vs brian2-cython", _ours(net, 1, duration), b2,
                ours_label="neuro (fused engine)", peer_label="brian2 cython run()", repeats=repeats,
                params=params, target="ratio <= 0.2")
    rate = float(np.mean([m.count.mean() for m in net.monitors[:2]])) / (duration * 1e-3)
    r.params["rate_hz"] = round(rate, 1)
    results.append(r)
    B = 32
    ours_b = median_time(_ours(net, B, duration), 1 if quick else 3)
    results.append(_batched(f"Poisson-driven LIF 1000, {B} batched trials vs {B} x brian2-cython", net, ours_b,
                            r.peer_median_s, B, params, ">= 10x throughput (ratio <= 0.1)"))

    # scaling at fixed in-degree: every size (and its half-rate twin) built first, then run in turn, so that
    # a slow phase of the machine falls on all sizes alike (medians of the rounds)
    bw = bandwidth_gbs()
    sizes = (1_000, 4_000, 16_000) if quick else (1_000, 4_000, 16_000, 64_000, 100_000)
    dur = 100.0 if quick else 1000.0
    nets = {n: build_scaled(n) for n in sizes}
    # the cost of an event alone: the same network driven at half the input rate does the same
    # neuron-steps and input scans and fewer events; the time saved per event saved
    quiet = {n: build_scaled(n, rate=10.0) for n in sizes}
    for net in (*nets.values(), *quiet.values()):
        _ours(net, 1, 10.0)()  # compile, first touch
    fns = {(n, k): _ours(net, 1, dur) for n in sizes for k, net in (("full", nets[n]), ("quiet", quiet[n]))}
    times = alternate(fns, 1 if quick else 5, warmup=0)
    per_event = {}
    marginal = {}
    for n in sizes:
        net = nets[n]
        t = float(np.median(times[n, "full"]))
        t_quiet = float(np.median(times[n, "quiet"]))
        events = synaptic_events(net)
        steps = int(round(dur / DT))
        per_event[n] = t / events * 1e9
        rate = float(np.mean([m.count.mean() for m in net.monitors[:2]])) / (dur * 1e-3)
        marginal[n] = (t - t_quiet) / max(1, events - synaptic_events(quiet[n])) * 1e9
        results.append(Result(
            f"fixed in-degree LIF {n}, 1 trial: ns per synaptic event", "neuro (fused engine)",
            "memory-bandwidth bound (16 B per event)", per_event[n] * 1e-9, 16 / (bw * 1e9),
            per_event[n] * 1e-9 / (16 / (bw * 1e9)), 1,
            {"neurons": n, "duration_ms": dur, "events": events, "rate_hz": round(rate, 1),
             "ns_per_event": round(per_event[n], 2),
             "ns_per_event_range": [round(min(times[n, "full"]) / events * 1e9, 2),
                                    round(max(times[n, "full"]) / events * 1e9, 2)],
             "marginal_ns_per_event": round(marginal[n], 2),
             "ns_per_neuron_step": round(t / (n * steps) * 1e9, 2),
             "bandwidth_GBs": round(bw, 1), "seconds": round(t, 3)},
            "ns per event within 1.5x across sizes", machine(), time.strftime("%Y-%m-%d")))
    del nets, quiet, fns
    spread = max(per_event.values()) / min(per_event.values())
    spread_marginal = max(marginal.values()) / min(marginal.values())
    for r in results[-len(sizes):]:
        r.params["spread_max_over_min"] = round(spread, 2)
        r.params["marginal_spread_max_over_min"] = round(spread_marginal, 2)

    # the largest size against Brian2: one trial, 8 batched
    n = sizes[-1]
    net = build_scaled(n)
    b2 = _brian2(build_scaled(n), dur)
    b2()
    params = {"neurons": n, "duration_ms": dur}
    r = compare(f"fixed in-degree LIF {n}, 1 trial vs brian2-cython", _ours(net, 1, dur), b2,
                ours_label="neuro (fused engine)", peer_label="brian2 cython run()", repeats=1 if quick else 3,
                params=params, target="report")
    results.append(r)
    B = 8
    ours_b = median_time(_ours(net, B, dur), 1)
    results.append(_batched(f"fixed in-degree LIF {n}, {B} batched trials vs {B} x brian2-cython", net, ours_b,
                            r.peer_median_s, B, params, "report"))
    return results
