"""The rbm-digits study: writes its figures and the numbers behind them; the numbers say what theory says."""

import json

import numpy as np
import pytest

import experiments.studies.rbm_digits as study  # registers the study (also imported by experiments.studies)
from experiments import ConfigError
from experiments.registry import get, run_experiment

FIGURES = ("filters.png", "reconstructions.png", "pseudo_likelihood.png", "log_likelihood.png",
           "hopfield_capacity.png")


def _check(out, epochs):
    for name in FIGURES + ("results.json", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    assert sorted(res["figures"]) == sorted(FIGURES)
    for name in ("CD-1", "CD-10", "PCD"):
        c = res["curves"][name]
        assert c["epoch"] == list(range(epochs + 1)) and len(c["reconstruction_error"]) == epochs
        assert c["ll_epoch"][0] == 0 and c["ll_epoch"][-1] == epochs
        # training raises the exact test log-likelihood well above the untrained model's
        assert c["log_likelihood"][-1] > c["log_likelihood"][0] + 10, c["log_likelihood"]
        assert c["pseudo_log_likelihood"][-1] > c["pseudo_log_likelihood"][0] + 10
        assert res["final"][name]["test_log_likelihood"] == c["log_likelihood"][-1]
    # the untrained RBMs are the same model: same starting point for every method
    assert len({res["curves"][n]["log_likelihood"][0] for n in ("CD-1", "CD-10", "PCD")}) == 1
    assert np.array(res["filters"]).shape == (16, 64)
    rec = res["reconstructions"]
    assert np.array(rec["original"]).shape == np.array(rec["reconstruction"]).shape == (10, 64)
    cap = res["hopfield_capacity"]
    loads, classical, modern = np.array(cap["loads"]), np.array(cap["classical"]), np.array(cap["modern"])
    assert np.all(classical[loads <= 0.05] == 1.0) and np.all(classical[loads >= 0.3] <= 0.05)
    assert np.all(modern == 1.0)  # up to P = 2 N
    return res


def test_rbm_digits_quick(tmp_path):  # about 6 s on one core
    assert get("rbm-digits").fn is study.run
    _check(run_experiment("rbm-digits", out=tmp_path, seed=1, quick=True), 10)


def test_rbm_digits_config(tmp_path):
    assert get("rbm-digits").config is study.Config
    assert study.Config().epochs == 30 and study.Config.quick().epochs == 10
    with pytest.raises(ConfigError, match="unknown parameter 'epoch'"):
        run_experiment("rbm-digits", out=tmp_path, quick=True, params={"epoch": 3})
    with pytest.raises(ConfigError, match="epochs: must be >= 1"):
        run_experiment("rbm-digits", out=tmp_path, quick=True, params={"epochs": 0})
    assert not any(tmp_path.iterdir())
