"""Every public object prints as what it is, not as ``<... object at 0x...>``."""

import numpy as np
import pytest

import ann
import plasticity as P
from neuro import LIF, Network, Simulator
from neuro.components import RateReadout
from reservoirs import ESN, LSM, RLS, Ridge, SoftmaxReadout


def _objects():
    net = Network(dt=0.1, seed=0)
    E = net.population(10, LIF(), name="E")
    inp = net.poisson(5, rates=10.0, name="in")
    proj = net.connect(inp, E, "all_to_all", weight=1.0)
    mons = [net.monitor_spikes(E), net.monitor_state(E, ["v"]), net.monitor_rate(E), net.monitor_traces(E, tau=30.0, every=10.0)]
    sim = Simulator(dt=0.1)
    sim.add("net", net)
    sim.add("readout", RateReadout(10))
    lin = ann.nn.Linear(3, 2)
    return [net, E, inp, proj, *mons, sim, sim.monitor("readout.y"), RateReadout(4, 2), ESN(20, seed=0), LSM.maass2002(seed=0),
            Ridge(), RLS(), SoftmaxReadout(), P.Oja(lr=0.1), P.STDP(), ann.optim.SGD(lin.parameters(), lr=0.1),
            ann.ModuleComponent(lin, {"x": 3}, {"y": 2})]


@pytest.mark.parametrize("obj", _objects(), ids=lambda o: type(o).__name__)
def test_repr_names_the_object_and_its_settings(obj):
    text = repr(obj)
    assert " object at 0x" not in text
    assert type(obj).__name__ in text


def test_network_and_simulator_reprs_say_what_they_hold():
    net, *_ = _objects()
    assert repr(net).startswith("Network(dt=0.1 ms, populations=[E: 10 LIF], sources=[in: 5 PoissonInput], 1 projections (50 synapses)")
    net.reset(batch_size=3)
    assert "batch_size=3" in repr(net)


def test_optimizer_repr_is_pytorchs_format():
    torch = pytest.importorskip("torch")
    p = ann.Tensor(np.zeros(3), requires_grad=True)
    ours = repr(ann.optim.SGD([p], lr=0.1, momentum=0.9)).splitlines()
    theirs = repr(torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=0.1, momentum=0.9)).splitlines()
    assert ours[:2] == theirs[:2] == ["SGD (", "Parameter Group 0"]
    shared = {line.split(":")[0] for line in theirs[2:-1]} & {line.split(":")[0] for line in ours[2:-1]}
    assert {"    lr", "    momentum", "    nesterov", "    weight_decay"} <= shared
    assert [line for line in ours if line.startswith("    lr")] == [line for line in theirs if line.startswith("    lr")]
