"""The coupled study: one Simulator run with a liquid, an IP-adapted ESN and ann readouts writes its figures and numbers."""

import json

import numpy as np
import pytest

import ann
import experiments.studies.coupled as study
from experiments import ConfigError
from experiments.registry import get, run_experiment

FIGURES = ("accuracy.png", "online_learning.png", "readout_traces.png")


def _load(out):
    for name in FIGURES + ("results.json", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    return json.loads((out / "results.json").read_text())


def _check(res, n_seeds, epochs):
    assert len(res["per_seed"]) == n_seeds
    for s in res["per_seed"]:
        assert set(s["online"]) == {f"{r}/{n}" for r in study.READOUTS for n in study.SUBSTRATES}
        assert set(s["offline"]) == {"input only", "liquid", "esn", "both", "esn without IP"}
        assert all(0.0 <= v <= 1.0 for v in list(s["online"].values()) + list(s["offline"].values()))
        assert all(len(curve) == epochs and np.all(np.isfinite(curve)) for curve in s["losses"].values())
        ip = s["intrinsic_plasticity"]
        assert ip["state_sd_after"] != ip["state_sd_before"]  # IP changed the reservoir
        assert 1.0 < s["liquid_rate_hz"] < 200.0  # the liquid fires, not saturated
    assert set(res["summary"]) == {f"online:{k}" for k in res["per_seed"][0]["online"]} | \
        {f"offline:{k}" for k in res["per_seed"][0]["offline"]}


def test_coupled_smoke(tmp_path):
    assert get("coupled").fn is study.run
    params = {"seeds": 1, "n_train": 12, "n_test": 9, "duration": 30.0, "epochs": 1, "esn_units": 20, "lstm_hidden": 4}
    _check(_load(run_experiment("coupled", out=tmp_path, seed=5, quick=True, params=params)), 1, 1)


@pytest.mark.slow
def test_coupled_quick(tmp_path):  # about 20 s of CPU, 35 s under load
    res = _load(run_experiment("coupled", out=tmp_path, seed=0, quick=True))
    _check(res, 2, 2)
    summary = res["summary"]
    # the ESN (20 ms memory) reads the noisy templates far above chance (1/3); measured 0.91
    assert summary["offline:esn"]["mean"] > 0.7
    # the online ann readouts learn something too (measured 0.42-0.65, mean 0.53)
    online = [v["mean"] for k, v in summary.items() if k.startswith("online:")]
    assert np.mean(online) > 1 / 3 + 0.08


def test_masked_mse_counts_only_taught_trials():
    y = ann.Tensor(np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]]), requires_grad=True)
    target = ann.Tensor(np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]))  # trial 1 not taught yet
    loss = study.masked_mse(y, target)
    assert loss.item() == pytest.approx((1 + 1 + 1) / 4)  # two taught trials x two outputs
    loss.backward()
    assert np.all(y.grad[1] == 0)
    assert study.masked_mse(y, ann.Tensor(np.zeros((3, 2)))).item() == 0.0


def test_lstm_readout_step_equals_forward():
    m = study.LSTMReadout(3, 5, 2, seed=0)
    x = np.random.default_rng(1).standard_normal((6, 4, 3)).astype(np.float32)
    whole = m(x).numpy()
    state, steps = None, []
    for k in range(6):
        y, state = m.step(x[k], state)
        steps.append(y.numpy())
    np.testing.assert_allclose(np.stack(steps), whole, rtol=1e-6)


def test_stream_and_spike_encoding():
    rng = np.random.default_rng(0)
    shapes = study.templates(3, 50.0, rng)
    assert shapes.shape == (3, 100) and np.allclose(np.abs(shapes).max(axis=1), 0.8)
    u, labels = study.trials(shapes, 5, 0.0, rng)
    np.testing.assert_array_equal(u[:, :, 0], shapes[labels])  # no noise: the templates themselves
    idx, times, trial = study.encode_spikes(np.full((2, 2000, 1), 0.25), rng)
    # channel 2 prefers 0.25 (80 Hz); channels 0 and 3 sit 2 widths away (80 exp(-2) Hz)
    counts = np.bincount(idx, minlength=4) / (2 * 2000 * study.DT * 1e-3)
    assert counts[2] == pytest.approx(80.0, rel=0.15) and counts[3] == pytest.approx(80 * np.exp(-2), rel=0.3)
    assert set(np.unique(trial)) == {0, 1} and times.max() < 2000 * study.DT


def test_coupled_config(tmp_path):
    assert get("coupled").config is study.Config
    with pytest.raises(ConfigError, match="unknown parameter 'esn_unit'"):
        run_experiment("coupled", out=tmp_path, quick=True, params={"esn_unit": 20})
    with pytest.raises(ConfigError, match="n_train: expected an int"):
        run_experiment("coupled", out=tmp_path, quick=True, params={"n_train": "many"})
    assert not any(tmp_path.iterdir())
