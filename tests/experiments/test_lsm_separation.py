"""The lsm-separation study: --quick writes its files; distances behave as the separation property says."""

import json

import numpy as np
import pytest

import experiments.studies.lsm_separation as study
from experiments import ConfigError
from experiments.registry import get, run_experiment


def test_lsm_separation_quick(tmp_path):  # about 3 s of CPU
    assert get("lsm-separation").fn is study.run
    out = run_experiment("lsm-separation", out=tmp_path, seed=0, quick=True)
    for name in ("separation_vs_time.png", "separation_vs_distance.png", "results.json", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    levels = res["levels"]
    assert len(res["circuits"]) >= 2 and levels[0] == "jitter 0 ms" and levels[-1] == "independent"
    d = [res["input_distance_mean"][k] for k in levels]
    assert d[0] == 0.0 and np.all(np.diff(d) > 0)  # more jitter, further apart; independent furthest
    liquid = np.array(res["normalized_at_readout"]["liquid"]["mean"])
    inputs = np.array(res["normalized_at_readout"]["input_only"]["mean"])
    assert inputs[0] == 0.0 and liquid[0] > 0.05  # identical inputs: the liquid keeps its initial-state noise
    assert liquid[-1] == inputs[-1] == 1.0
    assert liquid[-1] > 1.5 * liquid[0]  # different inputs separate above the noise floor
    curves = {k: np.asarray(v) for k, v in res["liquid"]["mean_curve"].items()}
    assert curves["independent"].shape == (len(res["circuits"]), len(res["sample_times"]))
    # over the first 100 ms, independent inputs drive the states further apart than identical ones
    early = np.asarray(res["sample_times"]) <= 100
    assert curves["independent"][:, early].mean() > curves["jitter 0 ms"][:, early].mean()


def test_input_distance_and_filtered_traces():
    rng = np.random.default_rng(0)
    u = study.poisson_trains(3, 200.0, rng)
    assert np.all(study.input_distance(u, u, 200.0) == 0)
    one = [[np.array([50.0])] + [np.array([])] * 3]
    none = [[np.array([])] * 4]
    # a single spike convolved with exp(-(t/5)^2): its L2 norm is sqrt(5 sqrt(pi / 2)) (1 ms bins), over T
    assert study.input_distance(one, none, 200.0)[0] == pytest.approx(np.sqrt(5 * np.sqrt(np.pi / 2)) / 200.0, rel=1e-3)
    tr = study.filtered_input_traces(one, [40.0, 50.0, 80.0])
    np.testing.assert_allclose(tr[0, :, 0], [0.0, 1.0, np.exp(-1.0)])
    assert np.all(tr[0, :, 1:] == 0)
    moved = study.jittered(u, 0.0, 200.0, rng)
    assert all(np.array_equal(a, b) for ta, tb in zip(u, moved) for a, b in zip(ta, tb))


def test_lsm_separation_full_form_checks_brian2(tmp_path):
    params = {"duration": 100.0, "pairs": 2, "circuits": 1, "jitters": [0.0, 8.0]}
    out = run_experiment("lsm-separation", out=tmp_path, seed=1, quick=False, params=params)
    check = json.loads((out / "results.json").read_text())["brian2_check"]
    assert check["trials"] == 2 and check["max_abs_state_difference"] < 1e-9  # the engines give the same states


def test_lsm_separation_config(tmp_path):
    assert get("lsm-separation").config is study.Config
    with pytest.raises(ConfigError, match="unknown parameter 'circuit'"):
        run_experiment("lsm-separation", out=tmp_path, quick=True, params={"circuit": 1})
    with pytest.raises(ConfigError, match="engine: expected one of 'native', 'brian2'"):
        run_experiment("lsm-separation", out=tmp_path, quick=True, params={"engine": "nest"})
    assert not any(tmp_path.iterdir())
