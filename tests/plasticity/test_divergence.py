"""Diverging weights are caught, naming the rule and the step, in train and in every attachment."""

import warnings

import numpy as np
import pytest

import plasticity as P
from neuro import LIF, Network, NonFiniteWarning, Simulator
from plasticity.divergence import DivergenceWatch


def test_train_names_the_rule_and_the_step_of_divergence():
    X = np.random.default_rng(0).standard_normal((200, 3)) * 10
    W0 = np.full((2, 3), 1.0)
    with pytest.raises(FloatingPointError, match=r"Hebb diverged: the weights hold \d+ NaN or infinite value\(s\) after update \d+"):
        with np.errstate(over="ignore", invalid="ignore"):
            P.train(P.Hebb(lr=1.0), W0, X, epochs=50)
    with pytest.warns(NonFiniteWarning, match="Hebb diverged") as caught:
        with np.errstate(over="ignore", invalid="ignore"):
            P.train(P.Hebb(lr=1.0), W0, X, epochs=50, on_nonfinite="warn")
    assert len(caught) == 1  # warned once, not every step
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.train(P.Oja(lr=0.001), W0, X[:50])  # a stable rule: no check fires


def test_plastic_synapses_and_simulator_attachment_catch_divergence():
    syn = P.PlasticSynapses(np.ones((2, 3)), P.Hebb(lr=1e3))
    syn.reset(1)
    with pytest.raises(FloatingPointError, match=r"Hebb diverged.*after update \d+"):
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(200):
                syn.step(None, {"pre": np.full((1, 3), 50.0)})
    sim = Simulator(dt=1.0)
    sim.add("syn", P.PlasticSynapses(np.ones((2, 3)), P.Hebb(lr=1e-3), learn=False))
    from neuro.components import RateReadout

    sim.add("r", RateReadout(2, 2, dt=1.0, tau=5.0, W=np.eye(2)))
    sim.connect("syn.out", "r.x", weight=np.ones((2, 2)) * 2.0)
    P.attach_to_simulator(sim, "syn.out", "r.x", P.Hebb(lr=1e3), post="r.y")
    with pytest.raises(FloatingPointError, match="Hebb diverged"):
        with np.errstate(over="ignore", invalid="ignore"):
            sim.reset(1).run(400.0, inputs={"syn.pre": np.full((400, 3), 50.0)})


def test_network_attachment_checks_every_hundred_steps():
    net = Network(dt=0.1, seed=0)
    E = net.population(5, LIF(I_bg=40.0), name="E")
    proj = net.connect(E, E, "all_to_all", weight=0.1)
    hook = P.attach_to_network(net, proj, P.STDP(a_plus=1e308, a_minus=0.0, w_max=None, w_min=None, dt=0.1))
    assert hook.watch.every == 100
    net.reset(1)
    with pytest.raises(FloatingPointError, match=r"STDP diverged.*by update \d+00"):
        with np.errstate(over="ignore", invalid="ignore"):
            net.run(200.0)


def test_watch_validates_its_options():
    with pytest.raises(ValueError, match="on_nonfinite must be one of"):
        DivergenceWatch(P.Hebb(), "ignore")
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        DivergenceWatch(P.Hebb(), every=0)
