"""The counter-based generator (Philox4x32-10) and the Poisson inputs drawn from it."""

import numba
import numpy as np
import pytest

from neuro import Network
from neuro.inputs import poisson_advance, poisson_advance_reference, poisson_first
from neuro.philox import NEVER_STEP, philox4x32, poisson_isi, poisson_isi_reference, stream_keys, uniform

# Random123's known-answer vectors (kat_vectors): counter, key, result
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_known_answers(counter, key, expected):
    out = philox4x32(np.array(counter, np.uint64), np.array(key, np.uint64))
    assert out.dtype == np.uint32 and out.tolist() == list(expected)


def test_broadcasts_and_checks_words():
    c = np.array([k[0] for k in KAT], np.uint64)
    k = np.array([k[1] for k in KAT], np.uint64)
    assert philox4x32(c, k).tolist() == [list(e) for *_, e in KAT]
    with pytest.raises(ValueError, match="counter"):
        philox4x32(np.zeros(3, np.uint64), np.zeros(2, np.uint64))
    with pytest.raises(ValueError, match="key words"):
        philox4x32(np.zeros(4, np.int64), np.array([0, 1 << 33]))


def test_uniform_range_and_moments():
    n = 200_000
    counter = np.zeros((n, 4), np.uint64)
    counter[:, 0] = np.arange(n)
    u = uniform(counter, np.array([7, 9]))
    assert u.min() > 0 and u.max() <= 1
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 0.002


@numba.njit
def _isi_table(k0, k1, n, draws, log_q):
    out = np.empty((n, draws), np.int64)
    for i in range(n):
        for d in range(draws):
            out[i, d] = poisson_isi(k0, k1, i, d, log_q)
    return out


@pytest.mark.parametrize("p", [0.0, 1e-4, 0.02, 0.5, 1.0])
def test_numba_equals_reference(p):
    log_q = np.log1p(-p) if p < 1 else -np.inf
    key = np.array([12345, 678], np.uint64)
    nb = _isi_table(key[0], key[1], 300, 50, log_q)
    ref = poisson_isi_reference(key, np.arange(300)[:, None], np.arange(50)[None, :], log_q)
    np.testing.assert_array_equal(nb, ref)
    if p == 0:
        assert (ref == NEVER_STEP).all()
    elif p == 1:
        assert (ref == 1).all()
    else:  # geometric: mean 1/p, variance (1 - p)/p^2
        assert abs(ref.mean() * p - 1) < 5 * np.sqrt(1 - p) / np.sqrt(ref.size)


def test_advance_kernel_equals_reference():
    rng = np.random.default_rng(0)
    B, n = 3, 50
    keys = stream_keys(rng.spawn(B))
    log_q = np.log1p(-rng.uniform(0, 0.3, (B, n)))
    state = [np.zeros((B, n), np.int64) for _ in range(2)]
    poisson_first(keys, log_q, *state)
    twin = [x.copy() for x in state]
    out, out_ref = np.zeros((B, n), bool), np.zeros((B, n), bool)
    for step in range(300):
        poisson_advance(keys, log_q, *state, step, out)
        poisson_advance_reference(keys, log_q, *twin, step, out_ref)
        np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(state[1], twin[1])


def _trains(B, n, rate, duration, seed=3, dt=0.1):
    net = Network(dt=dt, seed=seed)
    src = net.poisson(n, rates=rate)
    mon = net.monitor_spikes(src)
    net.reset(B)
    net.run(duration)
    steps = int(round(duration / dt))
    raster = np.zeros((B, steps, n), bool)
    raster[mon.trial, mon.steps, mon.i] = True
    return raster


def test_poisson_statistics():
    """Rate, Fano factor near 1 and no correlation between trials or between sources."""
    B, n, rate, dt = 8, 200, 40.0, 0.1
    raster = _trains(B, n, rate, 2000.0)
    counts = raster.sum(axis=1)  # (B, n) spikes in 2 s
    mean = counts.mean()
    assert abs(mean - rate * 2.0) < 4 * np.sqrt(rate * 2.0 / counts.size)
    fano = counts.var(ddof=1) / mean  # Bernoulli per step: 1 - p = 0.996
    assert 0.85 < fano < 1.15
    # counts in 50 ms bins: correlation across sources (same trial) and across trials (same source)
    bins = raster.reshape(B, 40, 500, n).sum(axis=2).astype(float)  # (B, 40, n)
    src_corr = np.corrcoef(bins[0].T)[np.triu_indices(n, 1)]
    trial_corr = np.corrcoef(bins[:, :, 0])[np.triu_indices(B, 1)]
    assert abs(src_corr.mean()) < 0.01 and np.abs(src_corr).max() < 0.7
    assert abs(trial_corr.mean()) < 0.1
    # no spike of one trial repeats in another (independent streams)
    assert (raster[0] & raster[1]).sum() < 3 * raster[0].mean() * raster[1].mean() * raster[0].size + 10


def test_trial_streams_do_not_depend_on_the_batch():
    batch = _trains(4, 30, 50.0, 200.0, seed=11)
    for b in range(4):
        net = Network(dt=0.1, seed=11)
        src = net.poisson(30, rates=50.0)
        mon = net.monitor_spikes(src)
        net.reset(4).run(200.0)
        alone = np.zeros_like(batch[b])
        sel = mon.trial == b
        alone[mon.steps[sel], mon.i[sel]] = True
        np.testing.assert_array_equal(alone, batch[b])
    # and a one-trial batch seeded with trial b's seed gives trial b
    seeds = np.random.SeedSequence(11).spawn(4)
    net = Network(dt=0.1, seed=11)
    src = net.poisson(30, rates=50.0)
    mon = net.monitor_spikes(src)
    net.reset(1, seed=[np.random.default_rng(seeds[2])]).run(200.0)
    alone = np.zeros_like(batch[2])
    alone[mon.steps, mon.i] = True
    np.testing.assert_array_equal(alone, batch[2])
