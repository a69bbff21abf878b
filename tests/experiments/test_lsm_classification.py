"""The lsm-classification study: writes its figure and numbers; the liquid beats the filtered input early on."""

import json

import numpy as np
import pytest

import experiments.studies.lsm_classification as study
from experiments import ConfigError
from experiments.registry import get, run_experiment


def _load(out):
    for name in ("accuracy_vs_time.png", "results.json", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    return json.loads((out / "results.json").read_text())


def test_lsm_classification_smoke(tmp_path):  # a small run: files, shapes, above chance
    assert get("lsm-classification").fn is study.run
    params = {"n_train": 60, "n_test": 30, "circuits": 1, "readout_times": [100.0, 200.0], "duration": 200.0}
    res = _load(run_experiment("lsm-classification", out=tmp_path, seed=2, quick=True, params=params))
    assert np.asarray(res["liquid"]).shape == (1, 2)
    assert len(res["filtered_input"]) == len(res["binned_counts"]) == 2
    assert np.mean(res["liquid"]) > 1.0 / res["n_templates"] + 0.2


@pytest.mark.slow
def test_lsm_classification_quick(tmp_path):  # about 15 s of CPU, 30 s under load
    res = _load(run_experiment("lsm-classification", out=tmp_path, seed=0, quick=True))
    t = np.asarray(res["readout_times"])
    liquid = np.asarray(res["liquid"])
    assert liquid.shape == (2, t.size)
    early = t <= 100
    # one input channel: its filtered trace knows little, the liquid remembers the pattern
    assert liquid.mean(axis=0)[early].mean() > np.mean(np.asarray(res["filtered_input"])[early]) + 0.1
    assert np.all(liquid[:, t >= 100] > 0.8)


def test_binned_counts_and_accuracy_helpers():
    samples = [[np.array([1.0, 25.0, 59.0])], [np.array([45.0])]]
    counts = study.binned_counts(samples, 100.0, 60.0)  # bins [0, 20), [20, 40), [40, 60)
    np.testing.assert_array_equal(counts, [[1, 1, 1], [0, 0, 1]])
    x = np.r_[np.zeros((10, 2)), np.ones((10, 2))] + 0.01 * np.arange(20)[:, None]
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    assert study.accuracy(x, y, x, y) == 1.0


@pytest.mark.slow
def test_lsm_classification_brian2_engine_equals_native(tmp_path):  # about 15 s (Brian2 builds its code)
    params = {"n_train": 16, "n_test": 8, "circuits": 1, "readout_times": [50.0, 100.0], "duration": 100.0}
    native = _load(run_experiment("lsm-classification", out=tmp_path, seed=4, quick=True, params=params))
    brian2 = _load(run_experiment("lsm-classification", out=tmp_path, seed=4, quick=True,
                                  params=dict(params, engine="brian2")))
    assert brian2["engine"] == "brian2" and brian2["liquid"] == native["liquid"]


def test_lsm_classification_config(tmp_path):
    assert get("lsm-classification").config is study.Config
    with pytest.raises(ConfigError, match="unknown parameter 'readout_time'"):
        run_experiment("lsm-classification", out=tmp_path, quick=True, params={"readout_time": [100.0]})
    with pytest.raises(ConfigError, match=r"readout_times: each must lie in \(0, duration=200\]"):
        run_experiment("lsm-classification", out=tmp_path, quick=True, params={"duration": 200.0})
    assert not any(tmp_path.iterdir())
