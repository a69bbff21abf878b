"""neuro.Simulator: the coupling protocol, order of updates, hooks, monitors, and the example."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from neuro import LIF, Network, Simulator
from neuro.components import RateReadout

ROOT = Path(__file__).resolve().parents[2]


def _net(seed=0):
    net = Network(dt=0.1, seed=seed)
    pop = net.population(20, LIF(tau_m=20.0, v_reset=0.0, t_ref=2.0, I_bg=10.0), name="E", v_init=("uniform", 0, 15))
    net.connect(pop, pop, "fixed_probability", p=0.2, weight=1.0, delay=1.0)
    return net, pop


class Recorder:
    """A component that outputs the tick number and records what it receives."""

    def __init__(self, n):
        self.n, self.seen = n, []

    ports = property(lambda self: {"inputs": {"x": self.n}, "outputs": {"tick": self.n}})

    def reset(self, batch_size, seed=None):
        self.k, self.seen, self.B = 0, [], batch_size

    def step(self, t, inputs):
        self.seen.append(np.array(inputs.get("x", np.zeros((self.B, self.n)))))
        out = {"tick": np.full((self.B, self.n), float(self.k))}
        self.k += 1
        return out


def test_network_in_simulator_equals_network_alone():
    T = 600
    rng = np.random.default_rng(1)
    drive = rng.uniform(4, 12, (2, T, 20))
    alone, pop = _net()
    alone.inject(pop, drive, every=0.1)
    mon = alone.monitor_spikes(pop)
    alone.reset(2, seed=[4, 5])
    alone.run(T * 0.1)

    net, _ = _net()
    sim = Simulator(dt=0.1)
    sim.add("net", net)
    spikes = sim.monitor("net.E.spikes")
    sim.reset(2)
    net.reset(2, seed=[4, 5])  # same per-trial seeds as above
    sim.run(T * 0.1, inputs={"net.E.I": drive})
    got = spikes.values  # (B, T, N)
    assert got.shape == (2, T, 20) and got.sum() > 10
    counts = got.sum(axis=1)
    np.testing.assert_array_equal(counts, mon.count)
    trials, steps, idx = np.nonzero(got)
    np.testing.assert_array_equal(np.sort(steps * 0.1), np.sort(mon.t))


def test_update_order_and_delays_between_components():
    sim = Simulator(dt=1.0)
    a, b = Recorder(1), Recorder(1)
    sim.add("a", a)
    sim.add("b", b)
    sim.connect("a.tick", "b.x")  # a before b: same tick
    sim.connect("b.tick", "a.x", weight=10.0)  # b after a: previous tick (zeros at tick 0)
    sim.reset(1)
    sim.run(4.0)
    np.testing.assert_array_equal([x[0, 0] for x in b.seen], [0, 1, 2, 3])
    np.testing.assert_array_equal([x[0, 0] for x in a.seen], [0, 0, 10, 20])


def test_hooks_every_k_ticks_and_external_callable_input():
    sim = Simulator(dt=0.5)
    rec = Recorder(2)
    sim.add("rec", rec)
    ticks = []
    sim.attach(lambda s, tick: ticks.append((tick, s.t)), every=3)
    sim.reset(3)
    sim.run(5.0, inputs={"rec.x": lambda t: np.full(2, t)})
    assert ticks == [(2, 1.5), (5, 3.0), (8, 4.5)]
    np.testing.assert_array_equal([x[0, 0] for x in rec.seen], np.arange(10) * 0.5)
    assert rec.seen[0].shape == (3, 2)


def test_readout_in_simulator_equals_standalone_run_and_weight_matrix():
    rng = np.random.default_rng(0)
    x1 = (rng.random((2, 50, 4)) < 0.1).astype(float)
    x2 = (rng.random((2, 50, 6)) < 0.1).astype(float)
    W = rng.normal(size=(3, 6))
    M = rng.normal(size=(6, 4)) * 1e-3
    # standalone: rd's rates r1 feed rd2 through M in the same tick (rd comes first)
    r1 = RateReadout(4, 4, tau=5.0, dt=0.1, W=np.eye(4)).run(x1)
    expected = RateReadout(6, 3, tau=5.0, dt=0.1, W=W).run(x2 + r1 @ M.T)
    sim = Simulator(dt=0.1)
    sim.add("rd", RateReadout(4, 1, tau=5.0, dt=0.1))
    sim.add("rd2", RateReadout(6, 3, tau=5.0, dt=0.1, W=W))
    sim.connect("rd.r", "rd2.x", weight=M)  # target = M @ source
    mon = sim.monitor("rd2.y")
    sim.reset(2)
    sim.run(5.0, inputs={"rd2.x": x2, "rd.x": x1})
    np.testing.assert_allclose(mon.values, expected, rtol=1e-12)
    assert np.abs(r1 @ M.T).max() > 0.01  # the connection mattered
    # the filtered input of a constant 0/1 train estimates its rate (Hz)
    r = RateReadout(1, 1, tau=10.0, dt=0.1).run(np.ones((1, 2000, 1)))
    assert r[0, -1, 0] == pytest.approx(10000.0 / (1 - np.exp(-0.01)) * 1e-2, rel=1e-6)


def test_simulator_errors():
    sim = Simulator(dt=0.1)
    net, _ = _net()
    sim.add("net", net)
    sim.add("rd", RateReadout(20, 2))
    with pytest.raises(ValueError, match="component.port"):
        sim.connect("net", "rd.x")
    with pytest.raises(ValueError, match="no output port"):
        sim.connect("net.X.spikes", "rd.x")
    with pytest.raises(ValueError, match="no input port"):
        sim.connect("net.E.spikes", "rd.y")
    with pytest.raises(ValueError, match=r"weight must have shape \(20, 2\)"):
        sim.connect("rd.y", "net.E.I", weight=np.ones((2, 20)))
    with pytest.raises(ValueError, match="has size 2"):
        sim.connect("rd.y", "net.E.I")
    with pytest.raises(ValueError, match="exists"):
        sim.add("net", net)
    with pytest.raises(TypeError, match="lacks"):
        sim.add("bad", object())
    with pytest.raises(ValueError, match="dt=1.0"):
        sim.add("other", Network(dt=1.0))
    sim.reset(1)
    with pytest.raises(ValueError, match="must have shape"):
        sim.run(1.0, inputs={"net.E.I": np.ones((10, 3))})
    with pytest.raises(ValueError, match="ticks"):
        sim.run(1.0, inputs={"net.E.I": np.ones((5, 20))})


def test_example_couples_spiking_population_to_rate_readout():
    spec = importlib.util.spec_from_file_location("example", ROOT / "examples" / "spiking_rate_readout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(duration=400.0, batch_size=2)
    assert out["rate"].shape == (2, 400)
    assert min(out["correlation"]) > 0.5
