"""STDP against theory: the exponential window, an event-based reference for trains, and correlation-driven growth."""

import numpy as np
import pytest

import plasticity as P


def drive(rule, W, pre_ticks, post_ticks, n_ticks, batch_size=1):
    """Run ``rule`` over boolean spike rasters ``(n_ticks, B, n)``; returns the final W (modified in place)."""
    state = rule.init_state(W.shape, batch_size=batch_size)
    for t in range(n_ticks):
        rule.step(W, pre_ticks[t], post_ticks[t], state)
    return W


def raster(spike_ticks, n_ticks, n):
    """``(n_ticks, 1, n)`` bool raster from a list (per neuron) of tick lists."""
    r = np.zeros((n_ticks, 1, n), dtype=bool)
    for j, ticks in enumerate(spike_ticks):
        r[list(ticks), 0, j] = True
    return r


@pytest.mark.parametrize("interaction", ["all-to-all", "nearest"])
def test_measured_window_reproduces_the_exponential_window(interaction):
    a_plus, a_minus, tau_plus, tau_minus, dt = 0.012, 0.008, 16.8, 33.7, 0.5
    rule = P.STDP(a_plus=a_plus, a_minus=a_minus, tau_plus=tau_plus, tau_minus=tau_minus, dt=dt,
                  interaction=interaction, w_min=None, w_max=None)
    # 81 synapses onto one post neuron that spikes once, at tick 200; synapse j's only pre spike is at 200 - lag_j
    lags = np.arange(-120, 121, 3)  # ticks; post - pre
    n_ticks = 400
    pre = raster([[200 - lag] for lag in lags], n_ticks, len(lags))
    post = raster([[200]], n_ticks, 1)
    W = np.zeros((1, len(lags)))
    dw = drive(rule, W, pre, post, n_ticks)[0]
    ds = lags * dt  # ms
    expected = np.where(ds > 0, a_plus * np.exp(-ds / tau_plus), np.where(ds < 0, -a_minus * np.exp(ds / tau_minus), 0.0))
    np.testing.assert_allclose(dw, expected, rtol=1e-10, atol=1e-16)
    # fit the window back: log-linear regression recovers amplitudes and time constants as set
    pos, neg = ds > 0, ds < 0
    slope_p, icpt_p = np.polyfit(ds[pos], np.log(dw[pos]), 1)
    slope_n, icpt_n = np.polyfit(ds[neg], np.log(-dw[neg]), 1)
    assert np.isclose(-1 / slope_p, tau_plus, rtol=1e-6) and np.isclose(np.exp(icpt_p), a_plus, rtol=1e-6)
    assert np.isclose(1 / slope_n, tau_minus, rtol=1e-6) and np.isclose(np.exp(icpt_n), a_minus, rtol=1e-6)


def reference_dw(pre_times, post_times, p, nearest):
    """Event-based pair/triplet STDP for one synapse from spike-time lists (Pfister & Gerstner 2006, eqs. 2-3).

    Each sum over earlier spikes of the other (or same) neuron is restricted to the latest one for ``nearest``.
    Spikes at equal times do not interact.
    """
    def trace(times, t, tau):
        earlier = [s for s in times if s < t]
        if not earlier:
            return 0.0
        if nearest:
            return np.exp(-(t - max(earlier)) / tau)
        return sum(np.exp(-(t - s) / tau) for s in earlier)

    dw = 0.0
    for t in post_times:
        dw += trace(pre_times, t, p["tau_plus"]) * (p["a_plus"] + p["a3_plus"] * trace(post_times, t, p["tau_y"]))
    for t in pre_times:
        dw -= trace(post_times, t, p["tau_minus"]) * (p["a_minus"] + p["a3_minus"] * trace(pre_times, t, p["tau_x"]))
    return dw


@pytest.mark.parametrize("interaction", ["all-to-all", "nearest"])
@pytest.mark.parametrize("triplet", [False, True])
def test_spike_trains_match_event_based_reference(interaction, triplet):
    rng = np.random.default_rng(7)
    p = dict(a_plus=0.01, a_minus=0.012, tau_plus=15.0, tau_minus=25.0, tau_x=90.0, tau_y=110.0,
             a3_plus=0.006 if triplet else 0.0, a3_minus=0.002 if triplet else 0.0)
    dt, n_ticks, n_pre, n_post = 1.0, 300, 6, 3
    rule = P.STDP(dt=dt, interaction=interaction, w_min=None, w_max=None, **p)
    pre = rng.random((n_ticks, 1, n_pre)) < 0.05
    post = rng.random((n_ticks, 1, n_post)) < 0.05
    W = drive(rule, np.zeros((n_post, n_pre)), pre, post, n_ticks)
    times_pre = [np.flatnonzero(pre[:, 0, j]) * dt for j in range(n_pre)]
    times_post = [np.flatnonzero(post[:, 0, i]) * dt for i in range(n_post)]
    ref = np.array([[reference_dw(times_pre[j], times_post[i], p, interaction == "nearest") for j in range(n_pre)]
                    for i in range(n_post)])
    np.testing.assert_allclose(W, ref, rtol=1e-10, atol=1e-15)


def test_nearest_and_all_to_all_differ_as_expected():
    # pre at ticks 0 and 3, post at 10: all-to-all pairs both, nearest only the later pre spike
    a, tau = 0.01, 20.0
    pre, post = raster([[0, 3]], 20, 1), raster([[10]], 20, 1)
    w_all = drive(P.STDP(a_plus=a, a_minus=0.0, tau_plus=tau, w_min=None, w_max=None), np.zeros((1, 1)), pre, post, 20)
    w_nn = drive(P.STDP(a_plus=a, a_minus=0.0, tau_plus=tau, interaction="nearest", w_min=None, w_max=None),
                 np.zeros((1, 1)), pre, post, 20)
    assert np.isclose(w_all[0, 0], a * (np.exp(-10 / tau) + np.exp(-7 / tau)))
    assert np.isclose(w_nn[0, 0], a * np.exp(-7 / tau))


def test_weight_dependence_additive_hard_bounds_and_multiplicative_soft_bounds():
    pre, post = raster([[0]], 10, 1), raster([[5]], 10, 1)
    window = np.exp(-5 / 20.0)
    for w0 in (0.2, 0.7):
        W = drive(P.STDP(a_plus=0.1, a_minus=0.0, weight_dependence="multiplicative"), np.array([[w0]]), pre, post, 10)
        assert np.isclose(W[0, 0], w0 + 0.1 * (1.0 - w0) * window)
        W = drive(P.STDP(a_plus=0.0, a_minus=0.1, weight_dependence="multiplicative"), np.array([[w0]]), post[:, :, :1],
                  pre[:, :, :1], 10)  # post first: depression proportional to w
        assert np.isclose(W[0, 0], w0 - 0.1 * w0 * window)
        W = drive(P.STDP(a_plus=0.1, a_minus=0.0), np.array([[w0]]), pre, post, 10)
        assert np.isclose(W[0, 0], w0 + 0.1 * window)  # additive: independent of w
    W = drive(P.STDP(a_plus=0.5, a_minus=0.0, w_max=1.0), np.array([[0.9]]), pre, post, 10)
    assert W[0, 0] == 1.0  # hard bound


def test_triplet_rule_reproduces_frequency_dependence():
    # Sjostrom et al. (2001), as fitted by Pfister & Gerstner (2006): post-pre pairings (-10 ms) depress at 1 Hz
    # but potentiate at 50 Hz, and pre-post (+10 ms) potentiation grows with frequency; pair STDP cannot do this
    # (at 50 Hz it depresses for both orders with these time constants).
    def pairing(rule, freq_hz, lag, n_pairs=8):
        period = int(round(1000.0 / freq_hz))
        n_ticks = period * n_pairs + 100
        pre_t = [50 + k * period for k in range(n_pairs)]
        pre, post = raster([pre_t], n_ticks, 1), raster([[t + lag for t in pre_t]], n_ticks, 1)
        return drive(rule, np.zeros((1, 1)), pre, post, n_ticks)[0, 0]

    trip = P.STDP.pfister_gerstner()
    assert trip.triplet
    assert pairing(trip, 1.0, -10) < 0 < pairing(trip, 50.0, -10)
    assert 0 < pairing(trip, 10.0, +10) < pairing(trip, 50.0, +10)
    pair = P.STDP(a_plus=0.005, a_minus=0.005, tau_plus=16.8, tau_minus=33.7, w_min=None, w_max=None)
    assert not pair.triplet
    assert pairing(pair, 50.0, -10) < 0 and pairing(pair, 50.0, +10) < 0 < pairing(pair, 1.0, +10)


def test_correlated_inputs_are_strengthened_in_a_spiking_neuron():
    # a leaky integrate-and-fire neuron (one per trial, weights shared, updates averaged over 4 trials) driven by
    # 20 correlated and 20 independent Poisson inputs at equal rates: STDP strengthens the correlated group
    rng = np.random.default_rng(0)
    B, n, half, rate, c, T = 4, 40, 20, 0.01, 0.3, 10000  # rate per 1 ms tick (10 Hz), 10 s
    rule = P.STDP(a_plus=0.01, a_minus=0.012, tau_plus=20.0, tau_minus=20.0, dt=1.0, w_min=0.0, w_max=1.0)
    W = np.full((1, n), 0.5)
    state = rule.init_state(W.shape, batch_size=B)
    v, previous = np.zeros(B), np.zeros((B, n))
    for _ in range(T):
        common = rng.random((B, 1)) < rate
        pre = rng.random((B, n)) < rate
        pre[:, :half] = np.where(rng.random((B, half)) < c, common, pre[:, :half])
        v += -v / 10.0 + 0.4 * (previous @ W[0])  # input spikes arrive one tick later (synaptic delay)
        previous = pre
        post = v > 1.0
        v[post] = 0.0
        rule.step(W, pre, post[:, None], state)
    corr, indep = W[0, :half].mean(), W[0, half:].mean()
    assert corr > 0.6 and corr > indep + 0.12, (corr, indep)  # both started at 0.5


@pytest.mark.parametrize("rule", [P.STDP(), P.STDP(interaction="nearest", weight_dependence="multiplicative"),
                                  P.STDP.pfister_gerstner(), P.STDP(w_min=None, w_max=0.8, a_plus=0.3)],
                         ids=["pair", "nearest-mult", "triplet", "upper-bound-only"])
@pytest.mark.parametrize("per_trial", [False, True], ids=["shared", "per-trial"])
def test_stdp_synapse_kernel_cpu_path_equals_numpy_reference(rule, per_trial):
    from neuro.kernels import call

    from plasticity import stdp_kernels  # noqa: F401  (registers the kernel)

    rng = np.random.default_rng(11)
    n_pre, n_post, B = 30, 7, 3
    mask = rng.random((n_post, n_pre)) < 0.4
    j, i = np.nonzero(mask)
    order = rng.permutation(len(i))  # any synapse order
    i, j = i[order].astype(np.int64), j[order].astype(np.int64)
    index = P.SynapseIndex(i, j, n_pre, n_post)
    w0 = rng.uniform(0.05, 0.95, size=(B, len(i)) if per_trial else len(i))

    def run(impl, trials):
        w = w0[trials].copy() if per_trial else w0.copy()
        st = rule.init_state((n_post, n_pre), batch_size=len(trials))
        t2 = [st.get("pre_trace2", st["pre_trace"]), st.get("post_trace2", st["post_trace"])]
        spikes = np.random.default_rng(5)
        for _ in range(60):
            pre = (spikes.random((B, n_pre)) < 0.2).astype(float)[trials]
            post = (spikes.random((B, n_post)) < 0.3).astype(float)[trials]
            call("plasticity_stdp_synapses", w, i, j, pre, post, st["pre_trace"], st["post_trace"], *t2,
                 *index.arrays, rule=rule, impl=impl)
        return w, st

    out = {impl: run(impl, list(range(B))) for impl in ("reference", "cpu")}
    np.testing.assert_allclose(out["cpu"][0], out["reference"][0], rtol=1e-12, atol=1e-15)
    assert np.abs(out["cpu"][0] - w0).max() > 1e-3
    for k in out["cpu"][1]:
        np.testing.assert_allclose(out["cpu"][1][k], out["reference"][1][k], rtol=1e-12)
    if per_trial:  # each row learns as trial b alone would (a batch of one), not the batch average
        for b in range(B):
            np.testing.assert_allclose(out["cpu"][0][b], run("cpu", [b])[0][0], rtol=1e-12, atol=1e-15)
        with pytest.raises(ValueError, match="one row per trial"):
            st = rule.init_state((n_post, n_pre), batch_size=B)
            call("plasticity_stdp_synapses", w0[:2].copy(), i, j, np.zeros((B, n_pre)), np.zeros((B, n_post)),
                 st["pre_trace"], st["post_trace"], st["pre_trace"], st["post_trace"], *index.arrays, rule=rule,
                 impl="cpu")


@pytest.mark.parametrize("synapses", [False, True])
def test_stdp_rejects_non_spike_values(synapses):
    rule = P.STDP()
    W = np.full((2, 3), 0.5)
    state = rule.init_state(W.shape)
    rule.step(W, np.array([1, 0, 0]), np.array([0, 1]), state)  # 0/1 integers are spikes
    pre, post = np.array([0.5, 0.0, 0.0]), np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="pre must hold spikes"):
        if synapses:
            rule.step_synapses(W.ravel().copy(), np.tile(np.arange(3), 2), np.repeat(np.arange(2), 3), pre, post, state)
        else:
            rule.step(W, pre, post, state)
    with pytest.raises(ValueError, match="post must hold spikes"):
        rule.step(W, np.zeros(3, bool), np.array([2, 0]), state)
