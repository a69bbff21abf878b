"""The CUBA and COBA networks of Brette et al. (2007) (examples/brette2007.py): their statistics helper,
a short run, and (slow) the firing statistics against the same networks written in plain Brian2."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nets():
    spec = importlib.util.spec_from_file_location("brette2007", ROOT / "examples" / "brette2007.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_firing_statistics_against_a_plain_loop(nets):
    rng = np.random.default_rng(0)
    n, duration, skip = 30, 500.0, 50.0
    t = rng.uniform(0, duration, 400).round(1)
    i = rng.integers(0, n, 400)
    got = nets.firing_statistics(t, i, duration, n=n, skip=skip)
    cvs = []
    for k in range(n):
        tk = np.sort(t[(i == k) & (t >= skip)])
        if len(tk) >= 3:
            isi = np.diff(tk)
            cvs.append(isi.std() / isi.mean())
    assert got["rate"] == pytest.approx(np.sum(t >= skip) / n / ((duration - skip) / 1000.0))
    assert got["cv"] == pytest.approx(np.mean(cvs), rel=1e-12)
    assert got["n_cv"] == len(cvs)
    regular = nets.firing_statistics(np.arange(0, 100, 10.0), np.zeros(10, int), 100.0, n=1)
    assert regular["cv"] == pytest.approx(0.0, abs=1e-12) and regular["rate"] == pytest.approx(100.0)


@pytest.mark.parametrize("kind", ["cuba", "coba"])
def test_networks_build_and_fire(nets, kind):
    net, mons = nets.build(kind, seed=0)
    assert sum(p.n for p in net.populations) == 4000
    synapses = sum(pr.n_synapses for pr in net.projections)
    assert abs(synapses - 0.02 * 4000 * 4000) < 5 * np.sqrt(0.02 * 4000 * 4000)
    net.reset(2, seed=1)
    net.run(100.0)
    t, i = nets.neuro_spikes(mons, trial=1)
    assert len(t) > 200 and i.max() >= nets.N_E  # both populations fire
    assert not np.array_equal(mons["E"].count[0], mons["E"].count[1])  # trials differ


@pytest.mark.slow
@pytest.mark.brian2
@pytest.mark.parametrize("kind", ["cuba", "coba"])
def test_firing_statistics_match_brian2_over_seeds(nets, kind):
    """Mean rate and mean CV of ISI over 3 seeds (1 s each, the first 100 ms left out), ours against the
    network written in plain Brian2 (numpy target; its own connectivity and initial values)."""
    b2 = pytest.importorskip("brian2")
    duration, skip = 1000.0, 100.0
    ours, ref = [], []
    previous = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    try:
        for seed in range(3):
            net, mons = nets.build(kind, seed=seed)
            net.run(duration)
            ours.append(nets.firing_statistics(*nets.neuro_spikes(mons), duration, skip=skip))
            b2net, mon = nets.brian2_network(kind, seed)
            b2net.run(duration * b2.ms)
            ref.append(nets.firing_statistics(*nets.brian2_spikes(mon), duration, skip=skip))
    finally:
        b2.prefs.codegen.target = previous
    rate, rate_ref = np.mean([s["rate"] for s in ours]), np.mean([s["rate"] for s in ref])
    cv, cv_ref = np.mean([s["cv"] for s in ours]), np.mean([s["cv"] for s in ref])
    assert rate > 1.0
    assert abs(rate - rate_ref) <= 0.15 * rate_ref, (ours, ref)
    assert abs(cv - cv_ref) <= 0.1 * cv_ref, (ours, ref)
