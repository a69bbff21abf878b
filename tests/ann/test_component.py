"""ann modules as neuro.Simulator components: tick by tick equals the module on the whole sequence."""

import numpy as np
import pytest

import ann
from ann import nn
from ann.component import ModuleComponent
from neuro import Simulator


def _x(B=3, T=12, F=4, seed=0):
    return np.random.default_rng(seed).standard_normal((B, T, F))


def test_stateless_module_tick_by_tick_equals_whole_sequence():
    mlp = nn.MLP([4, 8, 2], dtype="float64", seed=0)
    x = _x()
    comp = ModuleComponent(mlp, {"x": 4}, {"y": 2})
    assert comp.kind == "stateless"
    with ann.no_grad():
        want = mlp(ann.Tensor(x)).numpy()
    np.testing.assert_allclose(comp.run(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell_cls,seq_cls", [(nn.RNNCell, nn.RNN), (nn.GRUCell, nn.GRU), (nn.LSTMCell, nn.LSTM)])
def test_cells_carry_state_like_the_sequence_layer(cell_cls, seq_cls):
    cell = cell_cls(4, 5, dtype="float64", seed=1)
    layer = seq_cls(4, 5, batch_first=True, dtype="float64", seed=1)
    for name, value in cell.state_dict().items():
        layer.state_dict()[name + "_l0"][...] = value
    x = _x()
    comp = ModuleComponent(cell, {"x": 4}, {"h": 5})
    assert comp.kind == "cell"
    with ann.no_grad():
        want = layer(ann.Tensor(x))[0].numpy()
    np.testing.assert_allclose(comp.run(x), want, rtol=1e-10, atol=1e-12)
    # reset clears the carried state: a second run gives the same outputs
    np.testing.assert_allclose(comp.run(x), want, rtol=1e-10, atol=1e-12)


def test_step_modules_mamba_and_rwkv_equal_their_forward():
    x = _x(B=2, T=9, F=8)
    for module in (nn.Mamba(8, d_state=4, dtype="float64", seed=2), nn.RWKVBlock(8, layer_id=0, n_layer=1, dtype="float64", seed=3)):
        comp = ModuleComponent(module, {"x": 8}, {"y": 8})
        assert comp.kind == "step"
        with ann.no_grad():
            want = module(ann.Tensor(x)).numpy()
        np.testing.assert_allclose(comp.run(x), want, rtol=1e-9, atol=1e-10)


def test_every_k_ticks_holds_outputs_and_ports_split():
    lin = nn.Linear(3, 4, dtype="float64", seed=4)
    comp = ModuleComponent(lin, {"a": 1, "b": 2}, {"y1": 1, "y2": 3}, every=3)
    x = _x(B=2, T=7, F=3)
    got = comp.run(x)
    with ann.no_grad():
        full = lin(ann.Tensor(x)).numpy()
    for k in range(7):
        np.testing.assert_allclose(got[:, k], full[:, 3 * (k // 3)], rtol=1e-12)
    out = ModuleComponent(lin, {"a": 1, "b": 2}, {"y1": 1, "y2": 3})
    out.reset(2)
    res = out.step(0.0, {"a": x[:, 0, :1], "b": x[:, 0, 1:]})
    np.testing.assert_allclose(np.concatenate([res["y1"], res["y2"]], axis=1), full[:, 0], rtol=1e-12)


def test_inside_a_simulator_with_a_batch_and_monitors():
    lin = nn.Linear(2, 1, dtype="float64", seed=5)
    sim = Simulator(dt=1.0)
    sim.add("net", ModuleComponent(lin, {"x": 2}, {"y": 1}))
    mon = sim.monitor("net.y")
    x = _x(B=4, T=10, F=2)
    sim.reset(batch_size=4).run(10.0, inputs={"net.x": x})
    with ann.no_grad():
        want = lin(ann.Tensor(x)).numpy()
    got = mon.values  # (B, T, 1)
    assert got.shape == (4, 10, 1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_online_learning_fits_a_linear_map():
    rng = np.random.default_rng(6)
    W_true = rng.standard_normal((2, 3))
    lin = nn.Linear(3, 2, dtype="float64", seed=7)
    comp = ModuleComponent(lin, {"x": 3}, {"y": 2}, optimizer=ann.optim.SGD(lin.parameters(), lr=0.05), train_every=2)
    assert comp.ports["inputs"] == {"x": 3, "target": 2}
    comp.reset(8)
    for _ in range(600):
        x = rng.standard_normal((8, 3))
        comp.step(None, {"x": x, "target": x @ W_true.T})
    assert comp.losses[-1] < 1e-3 * comp.losses[0]
    np.testing.assert_allclose(lin.weight.numpy(), W_true, atol=1e-2)
    with pytest.raises(ValueError, match="'target' input port"):
        comp.step(None, {"x": x})


def test_bad_arguments_are_named():
    lin = nn.Linear(3, 2, dtype="float64")
    with pytest.raises(TypeError, match="module must be an ann.nn.Module"):
        ModuleComponent(lambda x: x, {"x": 3}, {"y": 2})
    with pytest.raises(TypeError, match="inputs must be a non-empty dict"):
        ModuleComponent(lin, {}, {"y": 2})
    with pytest.raises(ValueError, match="kind must be one of"):
        ModuleComponent(lin, {"x": 3}, {"y": 2}, kind="rnn")
    comp = ModuleComponent(lin, {"x": 3}, {"y": 3})
    comp.reset(1)
    with pytest.raises(ValueError, match="output ports need"):
        comp.step(None, {"x": np.ones((1, 3))})
    with pytest.raises(ValueError, match="input 'x' must have shape"):
        comp.step(None, {"x": np.ones((2, 3))})
