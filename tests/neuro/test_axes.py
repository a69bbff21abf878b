"""The axis convention (DESIGN.md): batch, then time, then units, for every time series out of neuro.

Each monitor kind and the Simulator's port monitor give ``(B, K, N)`` (a population rate ``(B, T)``), and
a batch of trials equals the same trials run one at a time (batch index ``b`` holds trial ``b``).
"""

import numpy as np
import pytest

from neuro import LIF, Network, Simulator
from neuro.components import RateReadout

SEEDS = [21, 22, 23]
T_STEPS = 400  # 40 ms at dt 0.1


def _net(fused=True):
    net = Network(dt=0.1, seed=7, fused=fused)
    E = net.population(30, LIF(tau_m=20.0, v_th=15.0, v_reset=0.0, t_ref=2.0, I_bg=12.0), name="E",
                       v_init=("uniform", 0.0, 15.0))
    inp = net.poisson(10, rates=200.0, name="in")
    net.connect(inp, E, "fixed_probability", p=0.5, weight=3.0, delay=1.0)
    net.connect(E, E, "fixed_probability", p=0.1, weight=1.0, delay=1.5)
    mons = dict(spikes=net.monitor_spikes(E), rate=net.monitor_rate(E),
                state=net.monitor_state(E, ["v", "I_e"], indices=[0, 3, 9], every=0.5),
                trace=net.monitor_traces(E, 20.0, every=2.0))
    return net, mons


def _run(seeds, fused=True):
    net, mons = _net(fused)
    net.reset(len(seeds), seed=seeds)
    net.run(T_STEPS * 0.1)
    return mons


@pytest.fixture(scope="module", params=[True, False], ids=["fused", "step"])
def runs(request):
    return _run(SEEDS, request.param), [_run([s], request.param) for s in SEEDS]


def test_state_monitor_is_batch_time_units_and_a_view(runs):
    batch, singles = runs
    st = batch["state"]
    for var in ("v", "I_e"):
        x = st.values[var]
        assert x.shape == (3, 80, 3)  # (B, K, len(indices)): every 0.5 ms over 40 ms
        assert np.shares_memory(x, st._store[var]) and np.shares_memory(x, getattr(st, var))
        for b, one in enumerate(singles):
            assert one["state"].values[var].shape == (1, 80, 3)
            np.testing.assert_array_equal(one["state"].values[var][0], x[b])
    assert len(np.unique(st.v[:, -1, 0])) == 3  # the trials differ
    # entry [b, k, j] is neuron indices[j] of trial b at time t[k]
    np.testing.assert_allclose(st.t[:3], [0.0, 0.5, 1.0])


def test_rate_monitor_is_batch_time(runs):
    batch, singles = runs
    rate, spikes = batch["rate"], batch["spikes"]
    assert rate.counts.shape == rate.rate.shape == (3, T_STEPS) and rate.t.shape == (T_STEPS,)
    assert rate.smooth_rate(2.0).shape == (3, T_STEPS) and rate.mean_rate().shape == (3,)
    np.testing.assert_array_equal(rate.counts.sum(axis=1), spikes.count.sum(axis=1))
    counts = np.zeros((3, T_STEPS), np.int64)
    np.add.at(counts, (spikes.trial, spikes.steps), 1)
    np.testing.assert_array_equal(rate.counts, counts)
    np.testing.assert_allclose(rate.smooth_rate(2.0)[1], np.convolve(rate.rate[1], np.ones(20) / 20, mode="same"))
    assert np.shares_memory(rate.counts, rate.counts)  # read twice: the same stored record
    for b, one in enumerate(singles):
        assert one["rate"].rate.shape == (1, T_STEPS)
        np.testing.assert_array_equal(one["rate"].rate[0], rate.rate[b])
        np.testing.assert_array_equal(one["rate"].mean_rate()[0], rate.mean_rate()[b])
    assert spikes.count.shape == (3, 30) and len(np.unique(spikes.count.sum(axis=1))) > 1


def test_trace_monitor_is_batch_time_units(runs):
    batch, singles = runs
    tr, spikes = batch["trace"], batch["spikes"]
    x = tr.values
    assert x.shape == (3, 20, 30) and tr.t.shape == (20,)
    assert np.shares_memory(x, tr.values)  # no copy per access
    b, k = 2, 7
    t = tr.t[k]
    expected = np.zeros(30)
    sel = (spikes.trial == b) & (spikes.t < t - 1e-9)
    np.add.at(expected, spikes.i[sel], np.exp(-(t - spikes.t[sel]) / 20.0))
    np.testing.assert_allclose(x[b, k], expected, rtol=1e-9, atol=1e-12)
    for b, one in enumerate(singles):
        assert one["trace"].values.shape == (1, 20, 30)
        np.testing.assert_array_equal(one["trace"].values[0], x[b])


def test_views_keep_their_values_over_later_runs():
    net, mons = _net()
    net.reset(2, seed=[1, 2])
    net.run(10.0)
    v, trace, counts = mons["state"].v, mons["trace"].values, mons["rate"].counts
    kept = v.copy(), trace.copy(), counts.copy()
    net.run(10.0)
    for view, copy in zip((v, trace, counts), kept):
        np.testing.assert_array_equal(view, copy)
    assert mons["state"].v.shape == (2, 40, 3) and mons["trace"].values.shape == (2, 10, 30)
    np.testing.assert_array_equal(mons["state"].v[:, :20], kept[0])
    np.testing.assert_array_equal(mons["rate"].counts[:, :100], kept[2])


def test_empty_records_have_the_batch_axis_first():
    net, mons = _net()
    net.reset(2)
    assert mons["state"].v.shape == (2, 0, 3)
    assert mons["trace"].values.shape == (2, 0, 30)
    assert mons["rate"].rate.shape == (2, 0)
    sim = Simulator(dt=0.1)
    sim.add("rd", RateReadout(4, 3, tau=5.0, dt=0.1))
    mon = sim.monitor("rd.y")
    sim.reset(5)
    assert mon.values.shape == (5, 0, 3)


def _readout_sim(x, batch_size):
    sim = Simulator(dt=0.1)
    sim.add("rd", RateReadout(4, 2, tau=5.0, dt=0.1, W=np.arange(8.0).reshape(2, 4)))
    y, r = sim.monitor("rd.y"), sim.monitor("rd.r", every=5)
    sim.reset(batch_size)
    sim.run(x.shape[-2] * 0.1, inputs={"rd.x": x})
    return y, r


def test_port_monitor_is_batch_time_units_and_a_batch_equals_its_trials():
    rng = np.random.default_rng(3)
    x = (rng.random((3, 60, 4)) < 0.2).astype(float)  # (B, T, n)
    y, r = _readout_sim(x, 3)
    assert y.values.shape == (3, 60, 2) and y.t.shape == (60,)
    assert r.values.shape == (3, 12, 4) and r.t.shape == (12,)
    assert np.shares_memory(y.values, y.values)  # no copy per access
    # entry [b, k] is the output of trial b at tick k: the standalone run of the same input
    np.testing.assert_allclose(y.values, RateReadout(4, 2, tau=5.0, dt=0.1, W=np.arange(8.0).reshape(2, 4)).run(x),
                               rtol=1e-12)
    for b in range(3):
        y1, r1 = _readout_sim(x[b], 1)  # unbatched input (T, n), one trial
        assert y1.values.shape == (1, 60, 2)
        np.testing.assert_array_equal(r1.values[0], r.values[b])  # elementwise filter: bit for bit
        np.testing.assert_allclose(y1.values[0], y.values[b], rtol=1e-13)  # r @ W.T: BLAS sums by batch size


def test_rate_readout_run_takes_a_single_sequence_time_units():
    rng = np.random.default_rng(4)
    x = (rng.random((2, 30, 4)) < 0.3).astype(float)
    rd = RateReadout(4, 3, tau=5.0, dt=0.1, W=rng.normal(size=(3, 4)))
    batch = rd.run(x)
    assert batch.shape == (2, 30, 3)
    for b in range(2):
        one = rd.run(x[b])
        assert one.shape == (30, 3)
        np.testing.assert_allclose(one, batch[b], rtol=1e-13)  # r @ W.T: BLAS sums by batch size
    with pytest.raises(ValueError, match=r"\(B, T, 4\) or \(T, 4\)"):
        rd.run(np.zeros((30, 5)))


def test_network_in_a_simulator_records_batch_time_units():
    T = 200
    drive = np.random.default_rng(5).uniform(6, 14, (2, T, 30))  # (B, T, N) nA
    net, mons = _net()
    sim = Simulator(dt=0.1)
    sim.add("net", net)
    spikes = sim.monitor("net.E.spikes")
    sim.reset(2)
    net.reset(2, seed=[8, 9])
    sim.run(T * 0.1, inputs={"net.E.I": drive})
    got = spikes.values
    assert got.shape == (2, T, 30) and got.sum() > 10
    np.testing.assert_array_equal(got.sum(axis=1), mons["spikes"].count)
    trials, steps, idx = np.nonzero(got)
    order = np.lexsort((idx, trials, steps))
    np.testing.assert_array_equal(steps[order], mons["spikes"].steps)
    np.testing.assert_array_equal(trials[order], mons["spikes"].trial)
    np.testing.assert_array_equal(idx[order], mons["spikes"].i)
    # the same waveform injected into the network alone, (B, T, N) sampled every tick
    alone, m2 = _net()
    alone.inject(alone["E"], drive, every=0.1)
    alone.reset(2, seed=[8, 9])
    alone.run(T * 0.1)
    np.testing.assert_array_equal(m2["state"].v, mons["state"].v)
    np.testing.assert_array_equal(m2["spikes"].count, mons["spikes"].count)
