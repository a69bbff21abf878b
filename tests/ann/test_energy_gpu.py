"""Energy-based models on CuPy arrays equal the NumPy run with the same seed (needs a CUDA GPU or fakecupy)."""

import numpy as np
import pytest

from ann.energy import RBM, Hopfield, ModernHopfield, langevin_sample
from neuro.backend import asnumpy, gpu_available

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU")]


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_rbm_on_cupy_equals_numpy(visible):
    import cupy

    r = np.random.default_rng(0)
    data = (r.random((30, 6)) < 0.4).astype(float)
    runs = []
    for backend in ("numpy", "cupy"):
        rbm = RBM(6, 4, visible=visible, sigma=0.8, backend=backend, seed=1)
        x = data if backend == "numpy" else cupy.asarray(data)
        hist = rbm.fit(x, epochs=3, batch_size=8, lr=0.05, k=2, persistent=True, momentum=0.5, weight_decay=1e-3,
                       seed=2)
        assert isinstance(rbm.W, cupy.ndarray) == (backend == "cupy")
        out = {"W": rbm.W, "b": rbm.b, "c": rbm.c, "F": rbm.free_energy(x), "logZ": rbm.log_partition(),
               "err": hist["reconstruction_error"], "gibbs": rbm.gibbs(x[:5], k=3, seed=4),
               "sample": rbm.sample(7, steps=5, seed=5)}
        if visible == "bernoulli":
            out["pll"] = rbm.pseudo_log_likelihood(x)
        runs.append({k: asnumpy(v) if not isinstance(v, (float, list)) else v for k, v in out.items()})
    for key in runs[0]:
        np.testing.assert_allclose(runs[1][key], runs[0][key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_rbm_refuses_arrays_of_the_other_module():
    rbm = RBM(3, 2, backend="cupy", seed=0)
    with pytest.raises(TypeError, match="NumPy .host. array but the RBM's parameters are on cupy"):
        rbm.free_energy(np.zeros((1, 3)))


def test_langevin_on_cupy_equals_numpy():
    import cupy

    prec = np.array([[2.0, 0.5], [0.5, 1.0]])
    x0 = np.random.default_rng(0).standard_normal((16, 2))
    out = []
    for xp in (np, cupy):
        p = xp.asarray(prec)
        x = langevin_sample(lambda t: 0.5 * ((t @ p) * t).sum(axis=1), xp.asarray(x0), steps=20, step_size=0.05,
                            grad_clip=1.0, seed=1)
        assert isinstance(x, xp.ndarray)
        out.append(asnumpy(x))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-10, atol=1e-12)


def test_hopfield_on_cupy_equals_numpy():
    import cupy

    r = np.random.default_rng(0)
    xi = r.choice([-1.0, 1.0], (6, 40))
    cues = np.where(r.random(xi.shape) < 0.2, -xi, xi)
    out = []
    for xp, backend in ((np, "numpy"), (cupy, "cupy")):
        net = Hopfield(40, backend=backend).store(xp.asarray(xi))
        s, trace = net.recall(xp.asarray(cues), seed=1, energy_trace=True)
        modern = ModernHopfield(xp.asarray(xi), beta=0.5)
        out.append([asnumpy(a) for a in (net.W, s, trace, net.recall(xp.asarray(cues), mode="sync"),
                                         modern.retrieve(xp.asarray(cues), steps=2), modern.energy(xp.asarray(cues)))])
    for a, b in zip(out[1], out[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_energy_losses_on_cupy_equal_numpy():
    import cupy

    import ann
    import ann.functional as F

    r = np.random.default_rng(0)
    E = r.standard_normal((6, 4))
    t = r.integers(0, 4, 6)
    names = ["energy_loss", "energy_perceptron_loss", "energy_hinge_loss", "energy_log_loss",
             "energy_square_square_loss", "energy_square_exp_loss", "energy_nll_loss"]
    for name in names:
        out = []
        for xp in (np, cupy):
            x = ann.Tensor(xp.asarray(E), requires_grad=True)
            loss = getattr(F, name)(x, xp.asarray(t))
            loss.backward()
            assert isinstance(x.grad, xp.ndarray)
            out.append((float(loss.item()), asnumpy(x.grad)))
        np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-12, atol=1e-15, err_msg=name)


def test_ebm_trainer_on_cupy_equals_numpy():
    import cupy

    from ann import nn, optim
    from ann.energy import EBMTrainer, ReplayBuffer

    data = np.random.default_rng(0).standard_normal((3, 16, 2))
    runs = []
    for xp, backend in ((np, "numpy"), (cupy, "cupy")):
        model = nn.MLP([2, 8, 1], activation="tanh", dtype=np.float64, seed=0)  # energies (B, 1)
        model.to(backend=backend)
        buffer = ReplayBuffer(32, (2,), dtype=np.float64, backend=backend, seed=1)
        trainer = EBMTrainer(model, optim.Adam(model.parameters(), lr=0.01), buffer, steps=5, step_size=0.1,
                             noise_scale=0.01, grad_clip=1.0, alpha=0.1, seed=2)
        stats = [trainer.step(xp.asarray(batch)) for batch in data]
        assert isinstance(buffer.data, xp.ndarray)
        runs.append((stats, asnumpy(buffer.data), {k: asnumpy(v) for k, v in model.state_dict().items()}))
    for a, b in zip(runs[1][0], runs[0][0]):
        assert a == pytest.approx(b, rel=1e-9)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-9, atol=1e-12)
    for k in runs[0][2]:
        np.testing.assert_allclose(runs[1][2][k], runs[0][2][k], rtol=1e-9, atol=1e-12)
