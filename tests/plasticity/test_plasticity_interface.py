"""The shared rule interface: validation, purity, batch averaging, in-place steps, constraints, determinism."""

import warnings

import numpy as np
import pytest

import plasticity as P

RATE_RULES = [
    P.Hebb(lr=0.1, decay=0.3),
    P.Covariance(lr=0.1, tau_mean=4.0, pre_mean0=0.2, post_mean0=-0.1),
    P.Oja(lr=0.1),
    P.Sanger(lr=0.1),
    P.BCM(lr=0.1, tau_theta=3.0, theta0=0.5),
    P.Foldiak(lr=0.1, target=0.05),
]


def _state_with_values(rule, shape, rng, batch_size=1):
    state = rule.init_state(shape, batch_size=batch_size)
    if state is not None:
        for v in state.values():
            v[...] = rng.uniform(0.0, 1.0, size=v.shape)
    return state


def _slice_state(state, b):
    """The state of trial b alone (per-trial arrays keep a batch axis of 1; shared ones are shared)."""
    if state is None:
        return None
    return {k: (v[b:b + 1].copy() if v.ndim == 2 else v.copy()) for k, v in state.items()}


@pytest.mark.parametrize("rule", RATE_RULES, ids=lambda r: type(r).__name__)
def test_batched_delta_is_mean_of_single_deltas(rule):
    rng = np.random.default_rng(0)
    n = 4  # square so that Foldiak's zero diagonal is exercised
    W = rng.standard_normal((n, n)) * 0.5
    pre, post = rng.standard_normal((7, n)), rng.standard_normal((7, n))
    state = _state_with_values(rule, W.shape, rng)
    batched = rule.delta(W, pre, post, state)
    singles = [rule.delta(W, pre[b], post[b], state) for b in range(7)]
    np.testing.assert_allclose(batched, np.mean(singles, axis=0), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("interaction", ["all-to-all", "nearest"])
@pytest.mark.parametrize("dep", ["additive", "multiplicative"])
@pytest.mark.parametrize("triplet", [False, True])
def test_stdp_batched_delta_is_mean_of_per_trial_deltas(interaction, dep, triplet):
    rng = np.random.default_rng(1)
    extra = dict(a3_plus=0.02, a3_minus=0.01) if triplet else {}
    rule = P.STDP(interaction=interaction, weight_dependence=dep, **extra)
    W = rng.uniform(0, 1, size=(3, 5))
    B = 6
    state = _state_with_values(rule, W.shape, rng, batch_size=B)
    pre, post = rng.random((B, 5)) < 0.5, rng.random((B, 3)) < 0.5
    batched = rule.delta(W, pre, post, state)
    singles = [rule.delta(W, pre[b:b + 1], post[b:b + 1], _slice_state(state, b)) for b in range(B)]
    np.testing.assert_allclose(batched, np.mean(singles, axis=0), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rule", RATE_RULES + [P.STDP()], ids=lambda r: type(r).__name__)
def test_delta_is_pure_and_step_applies_it_in_place(rule):
    rng = np.random.default_rng(2)
    W = rng.uniform(0.1, 0.9, size=(4, 4))
    if rule.kind == "spike":
        pre, post = rng.random((3, 4)) < 0.5, rng.random((3, 4)) < 0.5
    else:
        pre, post = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    state = _state_with_values(rule, W.shape, rng, batch_size=3)
    W0, s0 = W.copy(), None if state is None else {k: v.copy() for k, v in state.items()}
    dW = rule.delta(W, pre, post, state)
    np.testing.assert_array_equal(W, W0)  # delta modifies nothing
    if state is not None:
        for k in state:
            np.testing.assert_array_equal(state[k], s0[k])
    out = rule.step(W, pre, post, state)
    assert out is W
    expected = W0 + dW
    if rule.kind == "spike":
        expected = np.clip(expected, rule.w_min, rule.w_max)
    np.testing.assert_allclose(W, expected, rtol=1e-13)
    if state is not None:
        assert any(not np.array_equal(state[k], s0[k]) for k in state)  # the state advanced


def test_rules_are_deterministic_given_seeds():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 4))
    W0 = rng.standard_normal((2, 4)) * 0.1
    for rule in (P.Oja(lr=0.01), P.BCM(lr=0.01), P.Sanger(lr=0.01)):
        a = P.train(rule, W0, X, epochs=2, batch_size=3, seed=11, record_every=10)
        b = P.train(rule, W0, X, epochs=2, batch_size=3, seed=11, record_every=10)
        c = P.train(rule, W0, X, epochs=2, batch_size=3, seed=12)
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.history, b.history)
        assert not np.array_equal(a.weights, c.weights)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: P.Oja(lr=0.0), "lr must be > 0"),
        (lambda: P.Hebb(lr=-1.0), "lr must be > 0"),
        (lambda: P.Hebb(lr=0.1, decay=-0.1), "decay must be >= 0"),
        (lambda: P.BCM(lr=0.1, tau_theta=0.0), "tau_theta must be > 0"),
        (lambda: P.BCM(lr=0.1, tau_theta=-5.0), "tau_theta must be > 0"),
        (lambda: P.BCM(lr=0.1, dt=0.0), "dt must be > 0"),
        (lambda: P.Covariance(tau_mean=-1.0), "tau_mean must be > 0"),
        (lambda: P.Sanger(lr=float("nan")), "lr must be finite"),
        (lambda: P.STDP(tau_plus=0.0), "tau_plus must be > 0"),
        (lambda: P.STDP(a_plus=-0.1), "a_plus must be >= 0"),
        (lambda: P.STDP(a_plus=0, a_minus=0), "nonzero amplitude"),
        (lambda: P.STDP(dt=-1.0), "dt must be > 0"),
        (lambda: P.STDP(interaction="nearest-pre"), "interaction must be one of"),
        (lambda: P.STDP(weight_dependence="power"), "weight_dependence must be one of"),
        (lambda: P.STDP(weight_dependence="multiplicative", w_max=None), "needs both"),
        (lambda: P.STDP(w_min=1.0, w_max=0.5), "w_min must be < w_max"),
        (lambda: P.IntrinsicPlasticity(lr=0), "lr must be > 0"),
        (lambda: P.IntrinsicPlasticity(activation="sigmoid", mu=1.5), "mu must lie in"),
        (lambda: P.IntrinsicPlasticity(sigma=0.0), "sigma must be > 0"),
        (lambda: P.Clip(None, None), "needs w_min or w_max"),
        (lambda: P.SoftBounds(1.0, 0.0), "w_min must be < w_max"),
        (lambda: P.RowNorm(norm=0.0), "norm must be > 0"),
        (lambda: P.SumNorm(mode="divisive"), "mode must be one of"),
    ],
)
def test_bad_hyperparameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types_and_shapes_raise():
    with pytest.raises(TypeError, match="lr must be a real number"):
        P.Oja(lr="0.1")
    with pytest.raises(TypeError, match="constraints must hold Constraint"):
        P.Oja(constraints=[lambda W: W])
    rule = P.Oja(lr=0.1)
    W = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"pre must have shape \(B, 3\)"):
        rule.delta(W, np.zeros((1, 4)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="same batch size"):
        rule.delta(W, np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="floating"):
        rule.step(np.zeros((2, 3), dtype=int), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="needs its state"):
        P.BCM().delta(W, np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="stateless"):
        rule.delta(W, np.zeros(3), np.zeros(2), {"theta": np.zeros(2)})
    stdp = P.STDP()
    with pytest.raises(ValueError, match="batch_size=4"):
        stdp.delta(W, np.zeros((4, 3), bool), np.zeros((4, 2), bool), stdp.init_state(W.shape, batch_size=2))
    with pytest.raises(ValueError, match="shape must be a pair"):
        rule.init_state((3,))


def test_unstable_settings_warn():
    with pytest.warns(P.PlasticityWarning, match="tau_theta"):
        P.BCM(tau_theta=0.5)
    with pytest.warns(P.PlasticityWarning, match="exceeds the shortest STDP time constant"):
        P.STDP(dt=30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.BCM(tau_theta=2.0)
        P.STDP(dt=0.1)


def test_specs_are_immutable_and_compare_by_value():
    a, b = P.BCM(lr=0.01, tau_theta=20), P.BCM(lr=0.01, tau_theta=20.0)
    assert a == b
    with pytest.raises(Exception):
        a.lr = 0.5


def test_lr_and_dt_scale_the_rate_update():
    rng = np.random.default_rng(4)
    W, x = rng.standard_normal((2, 3)), rng.standard_normal((5, 3))
    y = x @ W.T
    d1 = P.Oja(lr=0.1).delta(W, x, y)
    np.testing.assert_allclose(P.Oja(lr=0.1, dt=0.5).delta(W, x, y), 0.5 * d1)
    np.testing.assert_allclose(P.Oja(lr=0.2).delta(W, x, y), 2 * d1)
    # Oja against its formula written out per row
    expected = np.stack([np.mean([yb[i] * xb - yb[i] ** 2 * W[i] for xb, yb in zip(x, y)], axis=0) for i in range(2)])
    np.testing.assert_allclose(d1, 0.1 * expected)
    # Sanger against dW = lr (y x^T - LT[y y^T] W) per sample
    exp_s = np.mean([np.outer(yb, xb) - np.tril(np.outer(yb, yb)) @ W for xb, yb in zip(x, y)], axis=0)
    np.testing.assert_allclose(P.Sanger(lr=0.1).delta(W, x, y), 0.1 * exp_s)


# ----------------------------------------------------------------- constraints


def test_constraints_clip_rownorm_sumnorm():
    rng = np.random.default_rng(5)
    x, W0 = rng.standard_normal((4, 6)), rng.uniform(0.0, 1.0, size=(3, 6))
    y = x @ W0.T
    W = W0.copy()
    P.Hebb(lr=5.0, constraints=[P.Clip(0.0, 1.0)]).step(W, x, y)
    assert W.min() >= 0.0 and W.max() <= 1.0 and not np.array_equal(W, W0)
    W = W0.copy()
    P.Hebb(lr=0.5, constraints=[P.RowNorm(2.0)]).step(W, x, y)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 2.0)
    raw = W0 + P.Hebb(lr=0.5).delta(W0, x, y)
    np.testing.assert_allclose(W, 2.0 * raw / np.linalg.norm(raw, axis=1, keepdims=True))
    W = np.abs(W0.copy())
    P.Hebb(lr=0.01, constraints=[P.SumNorm(3.0)]).step(W, np.abs(x), np.abs(y))
    np.testing.assert_allclose(W.sum(axis=1), 3.0)
    W = W0.copy()
    P.Hebb(lr=0.5, constraints=[P.SumNorm(1.0, mode="subtractive")]).step(W, x, y)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    raw = W0 + P.Hebb(lr=0.5).delta(W0, x, y)
    np.testing.assert_allclose(W - raw, np.broadcast_to((1.0 - raw.sum(1, keepdims=True)) / 6, W.shape))


def test_soft_bounds_scale_by_distance_to_bound_and_compose():
    W = np.array([[0.25, 0.75]])
    dW = np.array([[1.0, -1.0]])
    np.testing.assert_allclose(P.SoftBounds(0.0, 1.0).transform(W, dW), [[0.75, -0.75]])
    # composition: soft bounds then clip then renormalize, in order
    rule = P.Hebb(lr=1.0, constraints=[P.SoftBounds(0.0, 1.0), P.Clip(0.0, 0.5), P.RowNorm()])
    x, y = np.array([1.0, 0.0]), np.array([1.0])
    W = np.array([[0.25, 0.75]])
    rule.step(W, x, y)
    manual = np.array([[0.25 + 0.75, 0.75]])  # soft-bounded change, then clip -> [0.5, 0.5], then norm
    manual = np.clip(manual, 0, 0.5)
    np.testing.assert_allclose(W, manual / np.linalg.norm(manual))
    np.testing.assert_allclose(rule.delta(np.array([[0.25, 0.75]]), x, y), [[0.75, 0.0]])


def test_soft_bounds_act_on_the_batch_averaged_change():
    rng = np.random.default_rng(6)
    W = rng.uniform(-1, 1, size=(3, 4))
    pre, post = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    bounded = P.Oja(lr=0.1, constraints=[P.SoftBounds(-2.0, 2.0)])
    raw_mean = np.mean([P.Oja(lr=0.1).delta(W, pre[b], post[b]) for b in range(5)], axis=0)
    np.testing.assert_allclose(bounded.delta(W, pre, post), P.SoftBounds(-2.0, 2.0).transform(W, raw_mean))


# ----------------------------------------------------------- synapse lists


def _sparse_pattern(rng, n_post, n_pre, p=0.5):
    mask = rng.random((n_post, n_pre)) < p
    j, i = np.nonzero(mask)  # post, pre
    return i, j


@pytest.mark.parametrize(
    "rule",
    RATE_RULES[:3] + RATE_RULES[4:] + [P.Hebb(lr=0.1, constraints=[P.SoftBounds(-3, 3), P.Clip(-1.0, 1.0)]),
                                       P.STDP(), P.STDP(weight_dependence="multiplicative", interaction="nearest"),
                                       P.STDP.pfister_gerstner()],
    ids=lambda r: type(r).__name__,
)
@pytest.mark.parametrize("indexed", [False, True])
def test_synapse_list_step_equals_dense_step_at_the_synapses(rule, indexed):
    rng = np.random.default_rng(8)
    n = 5
    i, j = _sparse_pattern(rng, n, n)
    W = np.zeros((n, n))
    W[j, i] = rng.uniform(0.1, 0.9, size=len(i))
    w = W[j, i].copy()
    B = 3
    dense_state = _state_with_values(rule, W.shape, np.random.default_rng(1), batch_size=B)
    sparse_state = None if dense_state is None else {k: v.copy() for k, v in dense_state.items()}
    for _ in range(4):
        if rule.kind == "spike":
            pre, post = rng.random((B, n)) < 0.4, rng.random((B, n)) < 0.4
        else:
            pre, post = rng.standard_normal((B, n)), rng.standard_normal((B, n))
        np.testing.assert_allclose(rule.delta_synapses(w, i, j, pre, post, sparse_state),
                                   rule.delta(W, pre, post, dense_state)[j, i], rtol=1e-12, atol=1e-15)
        rule.step(W, pre, post, dense_state)
        if indexed:
            rule.step_synapses(w, i, j, pre, post, sparse_state, index=P.SynapseIndex(i, j, n, n))
        else:
            rule.step_synapses(w, i, j, pre, post, sparse_state)
        np.testing.assert_allclose(w, W[j, i], rtol=1e-12, atol=1e-15)
    if dense_state is not None:
        for k in dense_state:
            np.testing.assert_allclose(sparse_state[k], dense_state[k])


PER_TRIAL_RULES = [P.Hebb(lr=0.1, decay=0.3), P.Oja(lr=0.1), P.Foldiak(lr=0.1, target=0.05),
                   P.Hebb(lr=0.1, constraints=[P.SoftBounds(-3, 3), P.Clip(-1.0, 1.0)]),
                   P.STDP(), P.STDP(weight_dependence="multiplicative", interaction="nearest"),
                   P.STDP.pfister_gerstner()]


@pytest.mark.parametrize("rule", PER_TRIAL_RULES, ids=lambda r: type(r).__name__)
def test_per_trial_synapse_list_equals_a_dense_batch_of_one_per_trial(rule):
    rng = np.random.default_rng(12)
    n, B = 5, 3
    i, j = _sparse_pattern(rng, n, n)
    Ws = np.zeros((B, n, n))
    Ws[:, j, i] = rng.uniform(0.1, 0.9, size=(B, len(i)))
    w = Ws[:, j, i].copy()  # (B, S): one row per trial
    state = _state_with_values(rule, (n, n), np.random.default_rng(1), batch_size=B)
    dense_states = [_slice_state(state, b) for b in range(B)]
    for _ in range(4):
        if rule.kind == "spike":
            pre, post = rng.random((B, n)) < 0.4, rng.random((B, n)) < 0.4
        else:
            pre, post = rng.standard_normal((B, n)), rng.standard_normal((B, n))
        dw = rule.delta_synapses(w, i, j, pre, post, state)
        rule.step_synapses(w, i, j, pre, post, state, index=P.SynapseIndex(i, j, n, n))
        for b in range(B):
            np.testing.assert_allclose(dw[b], rule.delta(Ws[b], pre[b], post[b], dense_states[b])[j, i],
                                       rtol=1e-12, atol=1e-15)
            rule.step(Ws[b], pre[b], post[b], dense_states[b])
        np.testing.assert_allclose(w, Ws[:, j, i], rtol=1e-12, atol=1e-15)
    assert np.abs(w[0] - w[1]).max() > 1e-3
    if state is not None:
        for k in state:
            np.testing.assert_allclose(state[k], np.concatenate([s[k] for s in dense_states]))


def test_per_trial_synapse_lists_need_per_trial_state_and_one_row_per_trial():
    w, i, j = np.ones((2, 2)), np.array([0, 1]), np.array([0, 0])
    rule = P.BCM()
    with pytest.raises(ValueError, match="one state for all trials"):
        rule.step_synapses(w, i, j, np.ones((2, 2)), np.ones((2, 1)), rule.init_state((1, 2)))
    with pytest.raises(ValueError, match="one row per trial"):
        P.Oja().step_synapses(w, i, j, np.ones((3, 2)), np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"\(S,\) \(shared by the trials\) or \(B, S\)"):
        P.Oja().step_synapses(np.ones((1, 2, 2)), i, j, np.ones(2), np.ones(1))


def test_synapse_index_lists_the_synapses_of_each_neuron():
    rng = np.random.default_rng(9)
    i, j = rng.integers(0, 7, size=40), rng.integers(0, 5, size=40)
    idx = P.SynapseIndex(i, j, 7, 5)
    for neurons in ([0], [2, 5, 6], [], list(range(7))):
        expected = np.flatnonzero(np.isin(i, neurons))
        np.testing.assert_array_equal(np.sort(idx.of_pre(np.array(neurons, dtype=int))), expected)
    np.testing.assert_array_equal(np.sort(idx.of_post(np.array([1, 4]))), np.flatnonzero(np.isin(j, [1, 4])))
    with pytest.raises(ValueError, match="out of range"):
        P.SynapseIndex(i, j, 3, 5)


def test_synapse_lists_reject_non_local_rules_and_row_constraints():
    w, i, j = np.ones(2), np.array([0, 1]), np.array([0, 0])
    with pytest.raises(TypeError, match="not local"):
        P.Sanger().delta_synapses(w, i, j, np.ones(2), np.ones(1))
    with pytest.raises(ValueError, match="whole rows"):
        P.Oja(constraints=[P.RowNorm()]).step_synapses(w, i, j, np.ones(2), np.ones(1))
    with pytest.raises(ValueError, match="pre_index and post_index"):
        P.Oja().delta_synapses(w, i[:1], j, np.ones(2), np.ones(1))


def test_normalizations_leave_degenerate_rows_alone():
    W = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [1.0, -1.0, 0.0]])
    P.RowNorm().project(W)
    np.testing.assert_allclose(W[0], 0.0)
    np.testing.assert_allclose(W[1], [0.6, 0.8, 0.0])
    V = np.array([[1.0, -1.0], [1.0, 3.0]])
    P.SumNorm(2.0).project(V)
    np.testing.assert_allclose(V, [[1.0, -1.0], [0.5, 1.5]])  # a zero-sum row cannot be rescaled
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(V))
