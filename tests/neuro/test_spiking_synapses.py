"""Synapses: Tsodyks-Markram amplitudes vs a hand recurrence, delays, CSR propagation kernels vs references."""

import numpy as np
import pytest

from neuro import LIF, Network, tsodyks_markram
from neuro.synapses import NEVER, propagate_cpu, propagate_reference, propagate_tm_cpu, propagate_tm_reference

# Maass, Natschlaeger & Markram (2002): E->E depresses, E->I facilitates
EE = dict(U=0.5, D=1100.0, F=50.0)
EI = dict(U=0.05, D=125.0, F=1200.0)


def _hand(n, isi, U, D, F, w):
    """The recurrence of the issue, written out: A_n = w u_n R_n."""
    u, R, out = U, 1.0, []
    for k in range(n):
        if k > 0:
            R_new = 1 + (R - u * R - 1) * np.exp(-isi / D)
            u = U + u * (1 - U) * np.exp(-isi / F)
            R = R_new
        out.append(w * u * R)
    return np.array(out)


def _network_amplitudes(params, w, times, delay, dt=0.1, impl="cpu"):
    """Amplitudes seen by a postsynaptic current: jumps of I_e at the arrival steps."""
    net = Network(dt=dt, seed=0, impl=impl)
    src = net.spike_times(1, np.zeros(len(times), int), times)
    post = net.population(1, LIF(v_th=1e9, v_reset=0.0, tau_e=5.0))
    net.connect(src, post, "all_to_all", weight=w, delay=delay, **params)
    st = net.monitor_state(post, "I_e")
    net.run(times[-1] + delay + 2.0)
    I = st.I_e[0, :, 0]
    arrive = np.round((np.asarray(times) + delay) / dt).astype(int)
    # I_e recorded at the start of step n+1 = decayed I_e(n) + input arriving at n
    return I[arrive + 1] - I[arrive] * np.exp(-dt / 5.0)


@pytest.mark.parametrize("impl", ["cpu", "reference"])
@pytest.mark.parametrize("params,trend", [(EE, "depression"), (EI, "facilitation")])
def test_tsodyks_markram_amplitudes_match_hand_recurrence(params, trend, impl):
    isi, n, w = 50.0, 10, 2.0
    times = 10.0 + isi * np.arange(n)
    expected = _hand(n, isi, w=w, **params)
    np.testing.assert_allclose(tsodyks_markram(times, w=w, **params), expected, rtol=1e-12)
    got = _network_amplitudes(params, w, times, delay=1.5, impl=impl)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    if trend == "depression":
        assert np.all(np.diff(got) < 0) and got[-1] < 0.5 * got[0]
    else:
        assert np.all(np.diff(got) > 0) and got[-1] > 3 * got[0]


def test_first_spike_amplitude_is_wU_and_recovers_after_long_pause():
    amps = tsodyks_markram([0.0, 20.0, 1e6], U=0.5, D=100.0, F=50.0, w=3.0)
    assert amps[0] == pytest.approx(1.5)
    assert amps[1] < amps[0]
    assert amps[2] == pytest.approx(1.5, rel=1e-9)


@pytest.mark.parametrize("delay", [0.0, 0.1, 2.3])
def test_delay_in_steps(delay):
    dt = 0.1
    net = Network(dt=dt, seed=0)
    src = net.spike_times(1, [0], [5.0])
    post = net.population(1, LIF(v_th=1e9, tau_e=3.0))
    net.connect(src, post, "one_to_one", weight=1.0, delay=delay)
    st = net.monitor_state(post, "I_e")
    net.run(10.0)
    first = np.nonzero(st.I_e[0, :, 0])[0][0]
    # a spike at step 50 with d steps of delay arrives at the end of step 50 + d: seen from step 51 + d
    assert first == 50 + round(delay / dt) + 1
    assert st.I_e[0, first, 0] == pytest.approx(1.0)


def test_inhibitory_receptor_and_sign_inference():
    net = Network(dt=0.1, seed=0)
    src = net.spike_times(2, [0, 1], [1.0, 1.0])
    post = net.population(1, LIF(v_th=1e9))
    p_exc = net.connect(src, post, i=[0], j=[0], weight=2.0)
    p_inh = net.connect(src, post, i=[1], j=[0], weight=-3.0)
    assert (p_exc.receptor, p_inh.receptor) == ("exc", "inh")
    st = net.monitor_state(post, ["I_e", "I_i"])
    net.run(3.0)
    assert st.I_e[0, 11, 0] == pytest.approx(2.0) and st.I_i[0, 11, 0] == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="receptor"):
        net.connect(src, post, i=[0, 1], j=[0, 0], weight=[1.0, -1.0])


def test_csr_storage_by_presynaptic_neuron():
    net = Network(dt=0.1, seed=1)
    a = net.population(30)
    b = net.population(20)
    proj = net.connect(a, b, "fixed_probability", p=0.3, weight=lambda rng, n: rng.uniform(0, 1, n))
    assert np.all(np.diff(proj.i) >= 0)
    for k in range(a.n):
        rows = slice(proj.indptr[k], proj.indptr[k + 1])
        assert np.all(proj.i[rows] == k)
    W = proj.weight_matrix()
    assert W.shape == (20, 30)
    np.testing.assert_allclose(W[proj.j, proj.i], proj.w)


def _random_case(rng, B=4, n_pre=60, n_post=40, S=500, L=7):
    i = np.sort(rng.integers(0, n_pre, S))
    post = rng.integers(0, n_post, S)
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(np.bincount(i, minlength=n_pre), out=indptr[1:])
    return dict(spikes=rng.random((B, n_pre)) < 0.3, indptr=indptr, post=post, w=rng.normal(0, 1, S),
                delay=rng.integers(0, L, S)), np.zeros((L, B, n_post))


def _per_trial(case, rng):
    """The case with weights (B, S), one row per trial."""
    B, S = case["spikes"].shape[0], len(case["w"])
    return dict(case, w=rng.normal(0, 1, (B, S)))


@pytest.mark.parametrize("per_trial", [False, True], ids=["shared", "per-trial"])
def test_propagate_kernel_equals_reference(per_trial):
    rng = np.random.default_rng(3)
    case, buf = _random_case(rng)
    if per_trial:
        case = _per_trial(case, rng)
    a, b = buf.copy(), buf.copy()
    for step in range(5):
        propagate_reference(buf=a, step=step, **case)
        propagate_cpu(buf=b, step=step, **case)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert np.abs(a).sum() > 0


@pytest.mark.parametrize("per_trial", [False, True], ids=["shared", "per-trial"])
def test_propagate_tm_kernel_equals_reference(per_trial):
    rng = np.random.default_rng(4)
    case, buf = _random_case(rng)
    S, B = len(case["w"]), case["spikes"].shape[0]
    if per_trial:
        case = _per_trial(case, rng)
    tm = dict(U=rng.uniform(0.05, 0.6, S), D=rng.uniform(50, 1000, S), F=rng.uniform(10, 1000, S))
    state = dict(u=np.broadcast_to(tm["U"], (B, S)).copy(), R=np.ones((B, S)), last=np.full((B, S), NEVER))
    sa = {k: v.copy() for k, v in state.items()}
    sb = {k: v.copy() for k, v in state.items()}
    a, b = buf.copy(), buf.copy()
    for step in range(0, 60, 7):
        case["spikes"] = rng.random(case["spikes"].shape) < 0.3
        propagate_tm_reference(buf=a, step=step, dt=0.1, **case, **tm, **sa)
        propagate_tm_cpu(buf=b, step=step, dt=0.1, **case, **tm, **sb)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for k in state:
        np.testing.assert_allclose(sa[k], sb[k], rtol=1e-12)


@pytest.mark.parametrize("fn", [propagate_reference, propagate_cpu])
def test_per_trial_weights_propagate_each_trial_with_its_own_row(fn):
    rng = np.random.default_rng(6)
    case, buf = _random_case(rng)
    per = _per_trial(case, rng)
    fn(buf=buf, step=2, **per)
    assert np.abs(buf).sum() > 0
    for b in range(case["spikes"].shape[0]):
        alone = np.zeros_like(buf[:, :1])
        fn(buf=alone, step=2, **dict(case, spikes=case["spikes"][b:b + 1], w=per["w"][b]))
        np.testing.assert_array_equal(alone[:, 0], buf[:, b])
    with pytest.raises(ValueError, match="one row per trial"):
        fn(buf=buf, step=0, **dict(case, w=per["w"][:2]))
