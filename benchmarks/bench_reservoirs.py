"""``reservoirs.ESN.run`` vs ReservoirPy 0.4 ``Reservoir.run`` with the same matrices.

N = 1000 units, connectivity 0.1, input connectivity 0.1, one input feature.
ReservoirPy draws the reservoir (its own sparse CSR ``W`` and ``Win``); our
ESN is built from those very matrices (``ESN.from_weights``), and the states
are checked equal before timing. Both run with one BLAS thread (the machine's
cores are shared, and ReservoirPy's step is single-threaded).

Every variant of ours and ReservoirPy are timed in one alternating loop
(ours default, ours ``threads=1``, ours default with ``out=`` reuse, ...,
peer; repeated), medians reported with min-max in the result's params:

* single sequence, T = 10,000 (quick: 2,000): default (one thread), two
  threads sharing each step's rows (``threads=2``, on request only), and
  the default writing into a reused ``out=`` array;
* 32 sequences of T = 2,000 (quick: 8 x 500) at once: ours as one batched
  run (default: one group of sequences per thread), ``threads=1``, and the
  default with ``out=`` reuse; ReservoirPy's ``run`` on the ``(B, T, F)``
  array (it loops over the sequences). The ratio is a throughput ratio
  (sequence-steps per second); T is shorter than for the single sequence
  to keep the ReservoirPy side (32 x T x 1000 float64 states, copied once
  more when it stacks them) within memory and minutes.
* under load: the same single and batched runs, default against
  ``threads=1``, while a second process keeps one core busy with a NumPy
  loop (ratio default / ``threads=1``: the default must not be slower).

LSM (``reservoirs.LSM.maass2002``, 135 neurons, dt 0.1 ms): 100 input trials
of 1 s (4 channels of 20 Hz jittered Poisson templates) run batched on
:mod:`neuro`'s native engine vs the same network in Brian2 (numpy target,
one Brian2 network per trial, as the bridge runs it). Brian2 is timed on a
few trials and its time scaled to 100 (stated in the result's params); the
two engines' states are checked equal first.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np

from experiments.timing import alternate

from .harness import Result, machine

_RPY = "reservoirpy 0.4.2 Reservoir.run"


def _blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()


def _result(name, ours, peer, times, params, target) -> Result:
    """A :class:`Result` for ``times[ours]`` against ``times[peer]``.

    ``params`` gains the min-max of both (s) and the ratios of the runs of the same round
    (``paired_ratios``, median and min-max): on shared cores the load drifts between rounds,
    and a round's two runs see about the same load.
    """
    mo, mp = statistics.median(times[ours]), statistics.median(times[peer])
    paired = [a / b for a, b in zip(times[ours], times[peer])]
    params = dict(params, ours_min_max_s=[min(times[ours]), max(times[ours])],
                  peer_min_max_s=[min(times[peer]), max(times[peer])],
                  paired_ratio_median=statistics.median(paired), paired_ratio_min_max=[min(paired), max(paired)])
    return Result(name, ours, peer, mo, mp, mo / mp, len(times[ours]), params, target, machine(),
                  datetime.now(timezone.utc).strftime("%Y-%m-%d"))


def _busy_core():
    """Start a second process that keeps one core busy with a NumPy loop (one BLAS thread); stop it with ``.kill()``."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = "import numpy as np\na = np.random.rand(200, 200)\nwhile True:\n    a = np.tanh(a @ a)\n"
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def run(quick: bool = False) -> list[Result]:
    return _esn(quick) + [_lsm(quick)]


def _esn(quick: bool) -> list[Result]:
    from reservoirpy.nodes import Reservoir

    from reservoirs import ESN
    from reservoirs.recurrence import resolve_threads

    units, T_single, B, T_batch = 1000, (2_000 if quick else 10_000), (8 if quick else 32), (500 if quick else 2_000)
    rng = np.random.default_rng(0)
    results = []
    with _blas_one_thread():
        peer = Reservoir(units, sr=0.9, rc_connectivity=0.1, input_connectivity=0.1, lr=1.0, seed=0)
        u = rng.uniform(-1, 1, (T_single, 1))
        peer.run(u[:2])  # ReservoirPy draws W (CSR), Win (CSR) and bias (0.0) on first use
        peer.reset()
        weights = (peer.W, peer.Win.toarray(), np.full(units, peer.bias, dtype=np.float64))
        auto, serial, two = ESN.from_weights(*weights), ESN.from_weights(*weights, threads=1), ESN.from_weights(*weights, threads=2)
        ours_states = auto.run(u)
        peer_states = peer.run(u)
        peer.reset()
        err = float(np.abs(ours_states - peer_states).max())
        if err > 1e-10:
            raise AssertionError(f"states differ from ReservoirPy's by {err}")
        del ours_states, peer_states
        nnz = peer.W.nnz

        def peer_run(inputs):
            peer.reset()
            return peer.run(inputs)

        out = np.empty((T_single, units))
        single = {
            "default": lambda: auto.run(u), "threads=1": lambda: serial.run(u),
            "default, out= reused": lambda: auto.run(u, out=out), _RPY: lambda: peer_run(u),
        }
        times = alternate(single, repeats=3 if quick else 7)
        for label in ("default", "threads=1", "default, out= reused"):
            model = serial if label == "threads=1" else auto
            params = {"units": units, "connectivity": 0.1, "T": T_single, "dtype": "float64",
                      "max_abs_state_diff": err, "threads": resolve_threads(model.threads, nnz, 1)}
            results.append(_result(f"ESN.run single sequence N={units} T={T_single}, {label}", label, _RPY, times,
                                   params, "ratio <= 0.5 (>= 2x faster)"))
        del out
        results.append(_rows_shared(two, serial, u[:1000], quick, "no other process started"))
        ub = rng.uniform(-1, 1, (B, T_batch, 1))
        out = np.empty((B, T_batch, units))
        batch = {"default": lambda: auto.run(ub), "threads=1": lambda: serial.run(ub),
                 "default, out= reused": lambda: auto.run(ub, out=out), _RPY: lambda: peer_run(ub)}
        times = alternate(batch, repeats=2 if quick else 3)
        for label in ("default", "threads=1", "default, out= reused"):
            model = serial if label == "threads=1" else auto
            params = {"units": units, "connectivity": 0.1, "B": B, "T": T_batch, "dtype": "float64",
                      "threads": resolve_threads(model.threads, nnz, B)}
            results.append(_result(f"ESN.run {B} sequences batched N={units} T={T_batch}, {label}", label, _RPY, times,
                                   params, "ratio <= 0.1 (>= 10x throughput)"))
        del out
        results += _esn_loaded(auto, serial, two, u, ub, quick)
    return results


def _esn_loaded(auto, serial, two, u, ub, quick: bool) -> list[Result]:
    """Default vs ``threads=1`` (and ``threads=2`` for one sequence) while another process keeps a core busy."""
    busy = _busy_core()
    try:
        time.sleep(0.5)
        single = alternate({"default": lambda: auto.run(u), "threads=1": lambda: serial.run(u)},
                            repeats=3 if quick else 5)
        batch = alternate({"default": lambda: auto.run(ub), "threads=1": lambda: serial.run(ub)}, repeats=2 if quick else 3)
        rows = _rows_shared(two, serial, u[:1000], quick, _LOAD)
    finally:
        busy.kill()
        busy.wait()
    params = {"units": 1000, "T": u.shape[0], "load": _LOAD}
    return [
        _result(f"ESN.run single sequence T={u.shape[0]} under load: default vs threads=1", "default", "threads=1",
                single, params, "ratio <= 1 (default never slower)"),
        _result(f"ESN.run {ub.shape[0]} sequences batched T={ub.shape[1]} under load: default vs threads=1", "default",
                "threads=1", batch, dict(params, B=ub.shape[0], T=ub.shape[1]), "ratio <= 1 (default never slower)"),
        rows,
    ]


_LOAD = "another process keeps one core busy (NumPy loop)"


def _rows_shared(two, serial, u, quick: bool, load: str) -> Result:
    """One sequence with two threads sharing each step's rows (a barrier per step) vs one thread."""
    times = alternate({"threads=2": lambda: two.run(u), "threads=1": lambda: serial.run(u)}, repeats=3 if quick else 5)
    return _result(f"ESN.run single sequence T={u.shape[0]}, rows shared: threads=2 vs threads=1 ({load})", "threads=2",
                   "threads=1", times, {"units": 1000, "T": u.shape[0], "load": load}, "report")


def _lsm(quick: bool) -> Result:
    from reservoirs import LSM, tasks

    n_trials, n_peer, duration = (10, 1, 200.0) if quick else (100, 3, 1000.0)
    lsm = LSM.maass2002(seed=0)
    samples, _, _ = tasks.spike_template_task(n_trials, n_channels=4, duration=duration, seed=1)
    check = lsm.run(samples[:1], 100.0, engine="native")
    err = float(np.abs(check - lsm.run(samples[:1], 100.0, engine="brian2")).max())
    if err > 1e-6:
        raise AssertionError(f"native and Brian2 LSM states differ by {err}")
    lsm.run(samples[:2], 50.0)  # compile outside the timing
    start = time.perf_counter()
    lsm.run(samples, duration)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    lsm.run(samples[:n_peer], duration, engine="brian2")
    peer = (time.perf_counter() - start) * n_trials / n_peer
    return Result(
        f"LSM maass2002 {n_trials} trials x {duration:g} ms", "reservoirs.LSM native batched engine",
        f"Brian2 {__import__('brian2').__version__} (numpy target), timed on {n_peer} trials, scaled to {n_trials}",
        ours, peer, ours / peer, 1,
        {"neurons": 135, "trials": n_trials, "duration_ms": duration, "dt_ms": 0.1, "peer_trials_timed": n_peer,
         "max_abs_state_diff_100ms": err},
        "report", machine(), datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    )
