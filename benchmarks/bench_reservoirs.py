"""``reservoirs.ESN.run`` vs ReservoirPy 0.4 ``Reservoir.run`` with the same matrices.

N = 1000 units, connectivity 0.1, input connectivity 0.1, one input feature.
ReservoirPy draws the reservoir (its own sparse CSR ``W`` and ``Win``); our
ESN is built from those very matrices (``ESN.from_weights``), and the states
are checked equal before timing. Both run with one BLAS thread (the machine's
cores are shared, and ReservoirPy's step is single-threaded).

Each ESN comparison is made twice: with the default ``threads=None`` (all of
numba's threads for a reservoir this size: the rows of each step shared
among the cores) and with ``threads=1``, one core against ReservoirPy's one.

* single sequence, T = 10,000 (quick: 2,000);
* 32 sequences of T = 2,000 (quick: 8 x 500) at once: ours as one batched
  run (matrix-matrix per step), ReservoirPy's ``run`` on the ``(B, T, F)``
  array (it loops over the sequences). The ratio is a throughput ratio
  (sequence-steps per second); T is shorter than for the single sequence
  to keep the ReservoirPy side (32 x T x 1000 float64 states, copied once
  more when it stacks them) within memory and minutes.

LSM (``reservoirs.LSM.maass2002``, 135 neurons, dt 0.1 ms): 100 input trials
of 1 s (4 channels of 20 Hz jittered Poisson templates) run batched on
:mod:`neuro`'s native engine vs the same network in Brian2 (numpy target,
one Brian2 network per trial, as the bridge runs it). Brian2 is timed on a
few trials and its time scaled to 100 (stated in the result's params); the
two engines' states are checked equal first.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np

from .harness import Result, compare, machine


def _blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()


def run(quick: bool = False) -> list[Result]:
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
        esn = ESN.from_weights(peer.W, peer.Win.toarray(), np.full(units, peer.bias, dtype=np.float64))
        ours_states = esn.run(u)
        peer_states = peer.run(u)
        peer.reset()
        err = float(np.abs(ours_states - peer_states).max())
        if err > 1e-10:
            raise AssertionError(f"states differ from ReservoirPy's by {err}")
        del ours_states, peer_states

        def peer_single():
            peer.reset()
            return peer.run(u)

        serial = ESN.from_weights(peer.W, peer.Win.toarray(), np.full(units, peer.bias, dtype=np.float64), threads=1)
        auto = f"default threads={resolve_threads(None, peer.W.nnz)}"
        for model, label in ((esn, auto), (serial, "threads=1")):
            params = {"units": units, "connectivity": 0.1, "T": T_single, "dtype": "float64",
                      "max_abs_state_diff": err, "threads": resolve_threads(model.threads, peer.W.nnz)}
            results.append(
                compare(
                    f"ESN.run single sequence N={units} T={T_single}, {label}", lambda m=model: m.run(u), peer_single,
                    ours_label=f"reservoirs.ESN.run (numba CSR, {label})", peer_label="reservoirpy 0.4.2 Reservoir.run",
                    repeats=3 if quick else 5, params=params, target="ratio <= 0.5 (>= 2x faster)",
                )
            )
        ub = rng.uniform(-1, 1, (B, T_batch, 1))

        def peer_batch():
            peer.reset()
            return peer.run(ub)

        for model, label in ((esn, auto), (serial, "threads=1")):
            params = {"units": units, "connectivity": 0.1, "B": B, "T": T_batch, "dtype": "float64",
                      "threads": resolve_threads(model.threads, peer.W.nnz * B)}
            results.append(
                compare(
                    f"ESN.run {B} sequences batched N={units} T={T_batch}, {label}", lambda m=model: m.run(ub),
                    peer_batch, ours_label=f"reservoirs.ESN.run batched (numba CSR x dense, {label})",
                    peer_label="reservoirpy 0.4.2 Reservoir.run on (B, T, F)",
                    repeats=3 if not quick else 2, warmup=1, params=params,
                    target="ratio <= 0.1 (>= 10x throughput)",
                )
            )
    results.append(_lsm(quick))
    return results


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
