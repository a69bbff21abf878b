"""Hopfield memories: Hebbian storage equals plasticity's Hebb rule, energy descent, capacity, modern dense retrieval."""

import numpy as np
import pytest
import scipy.special

import plasticity
from ann.energy import Hopfield, ModernHopfield, overlap
from plasticity.memory import hebbian_storage, recall as plasticity_recall

N = 200


def _patterns(P, n=N, seed=0):
    return np.random.default_rng(seed).choice([-1.0, 1.0], (P, n))


def _corrupt(patterns, fraction=0.2, seed=1):
    """Flip exactly ``fraction`` of each pattern's units."""
    rng = np.random.default_rng(seed)
    cues = patterns.copy()
    n = patterns.shape[1]
    for row in cues:
        row[rng.choice(n, int(round(fraction * n)), replace=False)] *= -1
    return cues


def test_storage_is_the_hebb_rule_of_plasticity():
    xi = _patterns(12, n=30)
    net = Hopfield(30).store(xi[:5]).store(xi[5:])  # incremental storage adds up
    np.testing.assert_allclose(net.W, hebbian_storage(xi), rtol=1e-13, atol=1e-15)
    # the plain Hebb rule, one batch of all patterns as pre and post, lr = P/N, then no self-coupling
    W = np.zeros((30, 30))
    plasticity.Hebb(lr=12 / 30).step(W, xi, xi)
    np.fill_diagonal(W, 0.0)
    np.testing.assert_allclose(net.W, W, rtol=1e-13, atol=1e-15)
    assert net.n_patterns == 12 and net.load == pytest.approx(0.4)


def test_sync_recall_equals_plasticity_recall():
    xi = _patterns(30)
    net = Hopfield(N).store(xi)
    cues = _corrupt(xi, 0.3)
    # plasticity's recall on the integer weights N W (exact fields, so exact ties; same signs as W)
    W_int = np.round(net.W * N)
    np.testing.assert_array_equal(net.recall(cues, mode="sync", max_sweeps=20), plasticity_recall(W_int, cues, steps=20))


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_stored_patterns_are_fixed_points_below_capacity(mode):
    xi = _patterns(10)  # load 0.05
    net = Hopfield(N).store(xi)
    out, trace = net.recall(xi, mode=mode, seed=0, energy_trace=True)
    np.testing.assert_array_equal(out, xi)
    np.testing.assert_allclose(trace, trace[:, :1] * np.ones_like(trace))  # nothing moved


def test_corrupted_cues_are_retrieved_at_low_load_and_not_past_capacity():
    ok = _patterns(10)  # P = 0.05 N
    m_ok = overlap(Hopfield(N).store(ok).recall(_corrupt(ok), seed=0), ok)
    assert np.all(m_ok >= 0.95), m_ok  # every pattern from a 20%-corrupted cue
    over = _patterns(60)  # P = 0.3 N, well past 0.138 N
    m_over = overlap(Hopfield(N).store(over).recall(_corrupt(over), seed=0), over)
    assert np.mean(m_over >= 0.95) < 0.05 and m_over.mean() < 0.6, m_over


def test_energy_never_increases_under_async_updates():
    net = Hopfield(100).store(_patterns(30, n=100))  # overloaded: long, winding descents
    start = np.random.default_rng(2).choice([-1.0, 1.0], (8, 100))
    out, trace = net.recall(start, seed=3, energy_trace=True)
    assert trace.shape[1] > 100  # at least one full sweep of single-unit updates
    assert np.all(np.diff(trace, axis=1) <= 1e-12)
    assert np.all(trace[:, -1] < trace[:, 0])
    np.testing.assert_allclose(trace[:, -1], net.energy(out))
    np.testing.assert_array_equal(net.recall(out, mode="sync", max_sweeps=1), out)  # a fixed point


def test_modern_hopfield_update_and_energy_match_the_formulas():
    X = np.random.default_rng(4).standard_normal((7, 5))
    net = ModernHopfield(X, beta=0.8)
    q = np.random.default_rng(5).standard_normal((3, 5))
    np.testing.assert_allclose(net.retrieve(q), scipy.special.softmax(0.8 * q @ X.T, axis=1) @ X, rtol=1e-12)
    M = np.linalg.norm(X, axis=1).max()
    expected = (-scipy.special.logsumexp(0.8 * q @ X.T, axis=1) / 0.8 + 0.5 * (q * q).sum(1) + np.log(7) / 0.8
                + 0.5 * M**2)
    np.testing.assert_allclose(net.energy(q), expected, rtol=1e-12)
    # the update never raises the energy (Ramsauer et al. 2020: the update is a concave-convex procedure); huge scores do not overflow
    e = [net.energy(q)]
    for _ in range(5):
        q = net.retrieve(q)
        e.append(net.energy(q))
    assert np.all(np.diff(np.array(e), axis=0) <= 1e-12)
    assert np.isfinite(ModernHopfield(X * 1e3, beta=10.0).energy(q * 1e3)).all()


def test_modern_hopfield_stores_many_more_patterns_than_units():
    n, P = 64, 1024  # P = 16 N
    xi = _patterns(P, n=n)
    cues = _corrupt(xi)
    m = overlap(np.sign(ModernHopfield(xi, beta=1.0).retrieve(cues)), xi)
    assert np.all(m == 1.0)  # every one of the 1024 patterns, exactly, in one step
    # the classical network with the same units already fails at P = 2 N
    few = xi[:2 * n]
    classical = overlap(Hopfield(n).store(few).recall(cues[:2 * n], seed=0), few)
    assert np.mean(classical >= 0.95) < 0.05


def test_hopfield_bad_input():
    net = Hopfield(4)
    with pytest.raises(ValueError, match=r"patterns must hold \+1/-1"):
        net.store(np.array([[0, 1, 0, 1]]))
    with pytest.raises(ValueError, match=r"patterns must have shape \(B, 4\)"):
        net.store(np.ones((2, 5)))
    with pytest.raises(ValueError, match="mode must be"):
        net.recall(np.ones(4), mode="parallel")
    with pytest.raises(ValueError, match="max_sweeps"):
        net.recall(np.ones(4), max_sweeps=0)
    with pytest.raises(ValueError, match="n_units"):
        Hopfield(0)
    with pytest.raises(ValueError, match="beta"):
        ModernHopfield(np.ones((2, 3)), beta=0.0)
    with pytest.raises(ValueError, match=r"patterns must have shape \(P, N\)"):
        ModernHopfield(np.ones(3))
    with pytest.raises(ValueError, match=r"query must have shape \(B, 3\)"):
        ModernHopfield(np.ones((2, 3))).retrieve(np.ones((1, 4)))
    with pytest.raises(ValueError, match="steps"):
        ModernHopfield(np.ones((2, 3))).retrieve(np.ones(3), steps=0)
    with pytest.raises(ValueError, match="same shape"):
        overlap(np.ones((2, 3)), np.ones((3, 3)))
