"""Task generators against independent implementations and the definitions."""

import numpy as np
import pytest

from reservoirs import tasks


def test_mackey_glass_shape_range_and_seed():
    x = tasks.mackey_glass(3000, seed=1)
    assert x.shape == (3000, 1) and x.dtype == np.float64
    assert 0.2 < x.min() < 0.5 and 1.2 < x.max() < 1.45  # the tau = 17 attractor spans about [0.22, 1.35]
    np.testing.assert_array_equal(x, tasks.mackey_glass(3000, seed=1))
    assert not np.array_equal(x, tasks.mackey_glass(3000, seed=2))
    with pytest.raises(ValueError, match="multiples"):
        tasks.mackey_glass(10, sample_step=0.25, h=0.1)


def _mg_euler(n_samples, h, history, tau=17.0, a=0.2, b=0.1, n=10.0):
    lag = int(round(tau / h))
    every = int(round(1.0 / h))
    xs = list(history)
    out = []
    for _ in range(n_samples):
        for _ in range(every):
            d = xs[-1 - lag]
            xs.append(xs[-1] + h * (a * d / (1 + d**n) - b * xs[-1]))
        out.append(xs[-1])
    return np.array(out)


def test_mackey_glass_agrees_with_a_fine_euler_integration():
    # an independent scheme with a much smaller step, over a horizon short enough for chaos not to matter
    h_fine = 0.001
    lag = int(round(17.0 / h_fine))
    history = np.full(lag + 1, 1.2)
    ref = _mg_euler(40, h_fine, history)
    ours = tasks.mackey_glass(40, discard=0, seed=0, x0=1.2)  # history 1.2 * (1 + 5% noise): not identical
    # with the same constant history the two agree closely
    const = tasks._mg_integrate(np.full(171, 1.2), 40, 0.1, 170, 0.2, 0.1, 10.0, 10)
    np.testing.assert_allclose(const, ref, rtol=0, atol=5e-3)
    assert np.abs(ours[:, 0] - ref).max() < 0.2


def _narma_loop(u):
    y = [0.0] * (len(u) + 1)
    for t in range(len(u)):
        s = sum(y[t - i] for i in range(10) if t - i >= 0)
        past = u[t - 9] if t >= 9 else 0.0
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * s + 1.5 * past * u[t] + 0.1
    return np.array(y[1:])


def test_narma10_follows_the_recursion():
    u, y = tasks.narma10(500, seed=3)
    assert u.shape == y.shape == (500, 1)
    assert 0.0 <= u.min() and u.max() <= 0.5
    np.testing.assert_allclose(y[:, 0], _narma_loop(u[:, 0]), rtol=1e-12)
    u2, y2 = tasks.narma10(500, seed=3)
    np.testing.assert_array_equal(y, y2)  # seeded


def test_narma_regenerates_or_raises_on_divergence():
    # with a tiny bound every draw "diverges": after max_tries a clear error
    with pytest.raises(RuntimeError, match="diverged"):
        tasks.narma10(200, seed=0, bound=0.01, max_tries=3)
    # seed 0's first draw peaks above 1.0 (see the loop below): it is discarded and the next draw returned
    rng = np.random.default_rng(0)
    first, second = rng.uniform(0.0, 0.5, 2000), rng.uniform(0.0, 0.5, 2000)
    assert _narma_loop(first).max() > 1.0 and _narma_loop(second).max() <= 1.0
    u, y = tasks.narma10(2000, seed=0, bound=1.0)
    np.testing.assert_array_equal(u[:, 0], second)
    assert y.max() <= 1.0


def test_delayed_recall_targets_are_the_delayed_input():
    u, Y = tasks.delayed_recall(50, 5, seed=0)
    assert u.shape == (50, 1) and Y.shape == (50, 5)
    for k in range(1, 6):
        np.testing.assert_array_equal(Y[k:, k - 1], u[:-k, 0])
        np.testing.assert_array_equal(Y[:k, k - 1], 0.0)
    assert -1 <= u.min() and u.max() <= 1


def test_spike_templates_rates_jitter_and_binning():
    samples, labels, templates = tasks.spike_template_task(
        400, n_templates=2, n_channels=4, duration=1000.0, rate=20.0, jitter=4.0, seed=0
    )
    assert len(samples) == 400 and labels.shape == (400,) and set(labels) <= {0, 1}
    counts = [len(t) for tpl in templates for t in tpl]
    assert 10 < np.mean(counts) < 30  # 20 Hz over 1 s
    # jittered spikes stay near the template's spikes: nearest-neighbour offsets have SD ~ jitter
    offsets = []
    for s, lab in zip(samples[:50], labels[:50]):
        for c in range(4):
            tpl = templates[lab][c]
            if len(tpl) and len(s[c]):
                offsets.extend(s[c] - tpl[np.abs(s[c][:, None] - tpl[None]).argmin(axis=1)])
    assert 2.5 < np.std(offsets) < 5.0
    binned = tasks.bin_spikes(samples, 1000.0, dt=10.0)
    assert binned.shape == (400, 100, 4)
    np.testing.assert_array_equal(binned.sum(axis=1), [[len(t) for t in s] for s in samples])
