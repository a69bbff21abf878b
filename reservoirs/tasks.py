"""Benchmark tasks for reservoirs, generated locally and seeded.

* :func:`mackey_glass` - the chaotic delay differential equation, integrated with RK4;
* :func:`narma10` - the NARMA-10 input/target pair, regenerated if it diverges;
* :func:`delayed_recall` - i.i.d. input and its delayed copies (memory capacity);
* :func:`spike_template_task` / :func:`bin_spikes` - jittered Poisson spike templates
  (Maass, Natschlaeger & Markram 2002), as spike times and as binned counts.

Sequences follow the package's shapes: ``(T, F)``, batches ``(B, T, F)``.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from neuro.backend import make_rng, resolve_dtype

from neuro.validation import check_int, check_positive

__all__ = ["bin_spikes", "delayed_recall", "delayed_targets", "mackey_glass", "narma10", "spike_template_task"]


@numba.njit(cache=True)
def _mg_integrate(history, n_steps, h, lag, a, b, n, every):
    # history: the last ``lag + 1`` grid values x(t - lag*h) ... x(t); RK4 with step h,
    # delayed values at half steps by linear interpolation between grid points.
    size = lag + 1
    buf = np.empty(size + n_steps * every)
    buf[:size] = history
    out = np.empty(n_steps)
    i = size - 1  # index of the current time
    for s in range(n_steps):
        for _ in range(every):
            x = buf[i]
            d0 = buf[i - lag]
            d1 = buf[i - lag + 1]
            dm = 0.5 * (d0 + d1)
            k1 = a * d0 / (1.0 + d0 ** n) - b * x
            k2 = a * dm / (1.0 + dm ** n) - b * (x + 0.5 * h * k1)
            k3 = a * dm / (1.0 + dm ** n) - b * (x + 0.5 * h * k2)
            k4 = a * d1 / (1.0 + d1 ** n) - b * (x + h * k3)
            buf[i + 1] = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            i += 1
        out[s] = buf[i]
    return out


def mackey_glass(
    n_steps: int,
    *,
    tau: float = 17.0,
    a: float = 0.2,
    b: float = 0.1,
    n: float = 10.0,
    x0: float = 1.2,
    sample_step: float = 1.0,
    h: float = 0.1,
    discard: int = 500,
    seed: Any = None,
    dtype: Any = None,
) -> np.ndarray:
    """Mackey-Glass series ``dx/dt = a x(t - tau) / (1 + x(t - tau)^n) - b x(t)``, shape ``(n_steps, 1)``.

    Integration: classic 4th-order Runge-Kutta with step ``h`` (default 0.1
    time units, so ``tau / h`` = 170 grid steps); the delayed term at the
    half steps is the linear interpolation of the two neighbouring grid
    values. The series is sampled every ``sample_step`` time units (default
    1.0, i.e. every 10 RK4 steps). The initial history over ``[-tau, 0]`` is
    ``x0 * (1 + 0.05 * U(-1, 1))`` per grid point (drawn with ``seed``), and
    the first ``discard`` samples (the transient) are dropped.
    ``sample_step`` and ``tau`` must be multiples of ``h``.
    """
    n_steps = check_int(n_steps, "n_steps")
    discard = check_int(discard, "discard", minimum=0)
    for value, name in ((tau, "tau"), (a, "a"), (b, "b"), (n, "n"), (x0, "x0"), (sample_step, "sample_step"), (h, "h")):
        check_positive(value, name)
    lag, every = tau / h, sample_step / h
    if abs(lag - round(lag)) > 1e-9 or abs(every - round(every)) > 1e-9 or round(every) < 1:
        raise ValueError(f"tau ({tau}) and sample_step ({sample_step}) must be multiples of h ({h})")
    lag, every = int(round(lag)), int(round(every))
    rng = make_rng(seed)
    history = x0 * (1.0 + 0.05 * rng.uniform(-1.0, 1.0, size=lag + 1))
    series = _mg_integrate(history, n_steps + discard, float(h), lag, float(a), float(b), float(n), every)
    return series[discard:, None].astype(resolve_dtype(dtype))


def narma10(
    n_steps: int, *, seed: Any = None, order: int = 10, max_tries: int = 100, bound: float = 10.0, dtype: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """NARMA input ``u`` ``(n_steps, 1)`` and target ``y`` ``(n_steps, 1)`` (order 10 by default).

    ``u(t) ~ U[0, 0.5]`` i.i.d. and
    ``y(t+1) = 0.3 y(t) + 0.05 y(t) sum_{i=0..order-1} y(t-i) + 1.5 u(t-order+1) u(t) + 0.1``
    with ``y = 0`` before the start. The target row ``t`` is ``y(t+1)``, so
    it depends on inputs up to ``u(t)`` (what a reservoir driven by ``u``
    has seen). A draw whose ``|y|`` exceeds ``bound`` or turns non-finite
    (the recursion can diverge) is discarded and a new input drawn from the
    same generator, up to ``max_tries`` times (then ``RuntimeError``).
    """
    n_steps = check_int(n_steps, "n_steps")
    order = check_int(order, "order")
    max_tries = check_int(max_tries, "max_tries")
    bound = check_positive(bound, "bound")
    rng = make_rng(seed)
    for _ in range(max_tries):
        u = rng.uniform(0.0, 0.5, size=n_steps)
        y = _narma(u, order)
        if np.all(np.isfinite(y)) and np.max(np.abs(y)) <= bound:
            dtype = resolve_dtype(dtype)
            return u[:, None].astype(dtype), y[:, None].astype(dtype)
    raise RuntimeError(f"NARMA-{order} diverged in {max_tries} draws; lower the order or raise bound")


@numba.njit(cache=True)
def _narma(u, order):
    T = u.shape[0]
    y = np.zeros(T + 1)  # y[t] is y(t); y(0) = 0
    for t in range(T):
        s = 0.0
        for i in range(order):
            if t - i >= 0:
                s += y[t - i]
        past = u[t - order + 1] if t - order + 1 >= 0 else 0.0
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * s + 1.5 * past * u[t] + 0.1
        if not np.isfinite(y[t + 1]) or abs(y[t + 1]) > 1e300:
            y[t + 1:] = np.inf
            break
    return y[1:]


def delayed_recall(
    n_steps: int, max_delay: int, *, low: float = -1.0, high: float = 1.0, seed: Any = None, dtype: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """I.i.d. input ``u ~ U[low, high]`` ``(n_steps, 1)`` and delayed targets ``(n_steps, max_delay)``.

    Column ``k - 1`` of the targets is ``u(t - k)`` (delays 1 ... ``max_delay``);
    rows ``t < k`` hold 0 there, so discard the first ``max_delay`` steps
    (as a warm-up) before fitting or scoring.
    """
    n_steps = check_int(n_steps, "n_steps")
    max_delay = check_int(max_delay, "max_delay")
    if not high > low:
        raise ValueError(f"high must be greater than low, got low={low}, high={high}")
    rng = make_rng(seed)
    u = rng.uniform(low, high, size=n_steps)
    dtype = resolve_dtype(dtype)
    return u[:, None].astype(dtype), delayed_targets(u, max_delay).astype(dtype)


def delayed_targets(u: np.ndarray, max_delay: int) -> np.ndarray:
    """``(T, max_delay)``: column ``k - 1`` is ``u(t - k)`` for the 1-D input ``u`` ``(T,)``, 0 for ``t < k``."""
    targets = np.zeros((u.shape[0], max_delay), dtype=u.dtype)
    for k in range(1, min(max_delay, u.shape[0] - 1) + 1):
        targets[k:, k - 1] = u[:-k]
    return targets


def spike_template_task(
    n_samples: int,
    *,
    n_templates: int = 2,
    n_channels: int = 4,
    duration: float = 200.0,
    rate: float = 20.0,
    jitter: float = 4.0,
    seed: Any = None,
) -> tuple[list, np.ndarray, list]:
    """Jittered Poisson spike-train templates to classify (Maass, Natschlaeger & Markram 2002).

    Draws ``n_templates`` templates, each ``n_channels`` Poisson spike trains
    of ``rate`` Hz over ``duration`` ms; every sample picks a template
    uniformly and moves each spike by Gaussian noise of SD ``jitter`` ms
    (spikes pushed outside ``[0, duration)`` are dropped).

    Returns ``(samples, labels, templates)``: ``samples[i][c]`` is the sorted
    float64 array of spike times (ms) of channel ``c`` in sample ``i``,
    ``labels`` ``(n_samples,)`` the template indices, ``templates`` the same
    structure as one sample per template.
    """
    n_samples = check_int(n_samples, "n_samples")
    n_templates = check_int(n_templates, "n_templates")
    n_channels = check_int(n_channels, "n_channels")
    duration = check_positive(duration, "duration")
    rate = check_positive(rate, "rate")
    jitter = check_positive(jitter, "jitter", allow_zero=True)
    rng = make_rng(seed)
    templates = []
    for _ in range(n_templates):
        trains = []
        for _ in range(n_channels):
            count = rng.poisson(rate * duration / 1000.0)
            trains.append(np.sort(rng.uniform(0.0, duration, size=count)))
        templates.append(trains)
    labels = rng.integers(0, n_templates, size=n_samples)
    samples = []
    for label in labels:
        trains = []
        for train in templates[label]:
            moved = train + jitter * rng.standard_normal(train.shape[0])
            trains.append(np.sort(moved[(moved >= 0.0) & (moved < duration)]))
        samples.append(trains)
    return samples, labels, templates


def bin_spikes(samples: list, duration: float, dt: float = 1.0, *, dtype: Any = None) -> np.ndarray:
    """Spike counts per time bin: ``(B, T, C)`` for ``B`` samples of ``C`` channels, ``T = ceil(duration / dt)``.

    ``samples`` as returned by :func:`spike_template_task` (spike times in ms).
    """
    duration = check_positive(duration, "duration")
    dt = check_positive(dt, "dt")
    n_bins = int(np.ceil(duration / dt - 1e-9))
    if not samples:
        raise ValueError("samples must hold at least one sample")
    n_channels = len(samples[0])
    out = np.zeros((len(samples), n_bins, n_channels), dtype=resolve_dtype(dtype))
    for i, trains in enumerate(samples):
        if len(trains) != n_channels:
            raise ValueError(f"sample {i} has {len(trains)} channels, sample 0 has {n_channels}")
        for c, times in enumerate(trains):
            idx = np.floor(np.asarray(times) / dt).astype(np.int64)
            idx = idx[(idx >= 0) & (idx < n_bins)]
            np.add.at(out[i, :, c], idx, 1.0)
    return out
