"""The rules on CuPy arrays equal the same rules on NumPy (needs a CUDA GPU)."""

import numpy as np
import pytest

import plasticity as P
from neuro.backend import asnumpy, gpu_available

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU")]


@pytest.mark.parametrize("rule", [P.Hebb(lr=0.1, decay=0.1), P.Covariance(lr=0.1), P.Oja(lr=0.1), P.Sanger(lr=0.1),
                                  P.BCM(lr=0.1), P.Foldiak(lr=0.1), P.STDP(), P.STDP.pfister_gerstner(),
                                  P.Oja(lr=0.1, constraints=[P.SoftBounds(-2, 2), P.Clip(-1, 1), P.RowNorm()])],
                         ids=lambda r: type(r).__name__)
def test_step_on_cupy_equals_numpy(rule):
    import cupy

    rng = np.random.default_rng(0)
    W = rng.uniform(0.1, 0.9, size=(4, 4))
    Wg = cupy.asarray(W)
    state = rule.init_state(W.shape, batch_size=3)
    state_g = rule.init_state(W.shape, batch_size=3, like=Wg)
    for _ in range(5):
        if rule.kind == "spike":
            pre, post = rng.random((3, 4)) < 0.5, rng.random((3, 4)) < 0.5
        else:
            pre, post = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
        rule.step(W, pre, post, state)
        rule.step(Wg, cupy.asarray(pre), cupy.asarray(post), state_g)
    assert isinstance(Wg, cupy.ndarray)
    np.testing.assert_allclose(asnumpy(Wg), W, rtol=1e-10, atol=1e-12)
    if rule.local and not rule.constraints:
        i, j = np.nonzero(np.ones((4, 4)))[1], np.nonzero(np.ones((4, 4)))[0]
        w = cupy.asarray(W[j, i])
        dw = rule.delta_synapses(w, cupy.asarray(i), cupy.asarray(j), cupy.asarray(pre), cupy.asarray(post), state_g)
        np.testing.assert_allclose(asnumpy(dw), rule.delta(W, pre, post, state)[j, i], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rule", [P.Oja(lr=0.1), P.STDP(), P.STDP(constraints=[P.Clip(0.2, 0.8)])],
                         ids=["Oja", "STDP", "STDP-clip"])
def test_per_trial_synapse_list_on_cupy_equals_numpy(rule):
    import cupy

    rng = np.random.default_rng(2)
    B, n = 3, 4
    j, i = np.nonzero(rng.random((n, n)) < 0.6)  # post, pre
    w = rng.uniform(0.1, 0.9, size=(B, len(i)))
    wg = cupy.asarray(w)
    state = rule.init_state((n, n), batch_size=B)
    state_g = rule.init_state((n, n), batch_size=B, like=wg)
    index = P.SynapseIndex(cupy.asarray(i), cupy.asarray(j), n, n)
    for _ in range(6):
        if rule.kind == "spike":
            pre, post = rng.random((B, n)) < 0.5, rng.random((B, n)) < 0.5
        else:
            pre, post = rng.standard_normal((B, n)), rng.standard_normal((B, n))
        rule.step_synapses(w, i, j, pre, post, state)
        rule.step_synapses(wg, cupy.asarray(i), cupy.asarray(j), cupy.asarray(pre), cupy.asarray(post), state_g,
                           index=index)
    assert isinstance(wg, cupy.ndarray) and np.abs(w[0] - w[1]).max() > 1e-3
    np.testing.assert_allclose(asnumpy(wg), w, rtol=1e-10, atol=1e-12)


def test_train_and_intrinsic_on_cupy():
    import cupy

    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 3))
    W0 = rng.standard_normal((2, 3)) * 0.1
    a = P.train(P.Sanger(lr=0.01), W0, X, seed=2, record_every=10)
    b = P.train(P.Sanger(lr=0.01), cupy.asarray(W0), cupy.asarray(X), seed=2, record_every=10)
    np.testing.assert_allclose(asnumpy(b.weights), a.weights, rtol=1e-10)
    ip = P.IntrinsicPlasticity()
    s, sg = ip.init_state(3), ip.init_state(3, like=cupy.zeros(1))
    ip.step(X[:10], s)
    ip.step(cupy.asarray(X[:10]), sg)
    np.testing.assert_allclose(asnumpy(sg["gain"]), s["gain"], rtol=1e-12)


def test_synapse_index_on_cupy_equals_numpy():
    # its member lists once used repeat() with device counts, which CuPy 13 rejects
    import cupy

    rng = np.random.default_rng(9)
    i, j = rng.integers(0, 7, size=40), rng.integers(0, 5, size=40)
    idx, idx_g = P.SynapseIndex(i, j, 7, 5), P.SynapseIndex(cupy.asarray(i), cupy.asarray(j), 7, 5)
    for neurons in ([0], [2, 5, 6], [], list(range(7))):
        got = idx_g.of_pre(cupy.asarray(np.array(neurons, dtype=np.int64)))
        assert isinstance(got, cupy.ndarray)
        np.testing.assert_array_equal(asnumpy(got), idx.of_pre(np.array(neurons, dtype=np.int64)))
    np.testing.assert_array_equal(asnumpy(idx_g.of_post(cupy.asarray([1, 4]))), idx.of_post(np.array([1, 4])))


def test_divergence_on_cupy_is_checked_every_fifty_updates():
    import cupy

    from plasticity.divergence import DEVICE_EVERY

    X = cupy.asarray(np.random.default_rng(0).standard_normal((400, 3)) * 10)
    with pytest.raises(FloatingPointError, match=r"Hebb diverged.*by update (\d+)") as info:
        with np.errstate(over="ignore", invalid="ignore"):
            P.train(P.Hebb(lr=1.0), cupy.full((2, 3), 1.0), X, epochs=2)
    step = int(str(info.value).split("by update ")[1].split()[0])
    assert step % DEVICE_EVERY == 0  # checked only every DEVICE_EVERY updates on the device
