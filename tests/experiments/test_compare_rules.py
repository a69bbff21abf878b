"""The compare-rules study: runs quickly, writes its report and figures, and its numbers agree with theory."""

import json

import numpy as np
import pytest

import experiments.studies.compare_rules as cr  # registers the study (also imported by experiments.studies)
from experiments import ConfigError
from experiments.registry import get, run_experiment


def test_compare_rules_quick_point_agrees_with_theory(tmp_path):
    assert get("compare-rules").fn is cr.run and get("compare-rules").config is cr.Config
    out = run_experiment("compare-rules", out=tmp_path, seed=3, quick=True)
    for name in ("results.json", "config.json", "report.md", "summary.csv", "curves.npz", "figures/weight_norm.png",
                 "figures/alignment.svg", "figures/receptive_fields.png", "figures/stdp_weights.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["samples"] == 3000 and config["seeds"] == [3]  # the quick variant
    rate = json.loads((out / "results.json").read_text())["rate"]
    # theory: Oja and Sanger stay at unit norm and find PC1; Sanger finds the top-k in order; Hebb diverges
    assert rate["oja"]["gaussian"]["pc1_alignment"] > 0.9
    assert abs(rate["oja"]["gaussian"]["weight_norm"] - 1) < 0.05
    assert rate["sanger"]["gaussian"]["topk_alignment"] > 0.9
    assert rate["oja"]["gaussian"]["topk_alignment"] < 0.6  # independent Oja units all find PC1, not the top-k
    assert rate["hebb"]["gaussian"]["weight_norm"] > 1e4 and not rate["hebb"]["gaussian"]["stable"]
    # BCM alone becomes selective to one of two patterns
    assert rate["bcm"]["two-patterns"]["selectivity"] > 0.9
    assert max(rate[r]["two-patterns"]["selectivity"] for r in ("hebb", "oja")) < 0.5
    # STDP strengthens the correlated group more
    stdp = json.loads((out / "results.json").read_text())["stdp"]
    assert stdp["correlated"] > stdp["independent"]
    report = (out / "report.md").read_text()
    assert "| sanger | gaussian |" in report and "STDP" in report


def test_compare_rules_sweep_over_seeds_and_a_parameter(tmp_path):
    out = run_experiment("compare-rules", out=tmp_path, seeds=[0, 1], quick=True,
                         params={"samples": 300, "stdp": False, "rules": ["oja", "sanger"], "streams": ["gaussian"]},
                         sweep={"units": [2, 3]})
    summary = json.loads((out / "summary.json").read_text())
    assert [g["overrides"] for g in summary["groups"]] == [{"units": 2}, {"units": 3}]
    assert all(g["seeds"] == [0, 1] for g in summary["groups"])
    norm = summary["groups"][0]["metrics"]["rate/oja/gaussian/weight_norm"]
    per_seed = []
    for seed in (0, 1):
        folder = next(p for p in (out / "points").iterdir()
                      if p.is_dir() and json.loads((p / "point.json").read_text())["seed"] == seed
                      and json.loads((p / "point.json").read_text())["overrides"] == {"units": 2})
        per_seed.append(json.loads((folder / "results.json").read_text())["rate"]["oja"]["gaussian"]["weight_norm"])
    assert norm["n"] == 2 and np.isclose(norm["mean"], np.mean(per_seed)) and np.isclose(norm["std"], np.std(per_seed))
    report = (out / "report.md").read_text()
    assert "### units=2" in report and "### units=3" in report and "hebb" not in report.split("## Summary")[0]


def test_compare_rules_config_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="rules: expected one of"):
        run_experiment("compare-rules", out=tmp_path, params={"rules": ["oja", "nope"]})
    with pytest.raises(ConfigError, match="rules: give at least one"):
        run_experiment("compare-rules", out=tmp_path, params={"rules": []})
    with pytest.raises(ConfigError, match="samples: must be >= 10"):
        run_experiment("compare-rules", out=tmp_path, params={"samples": 5})
    assert not any(tmp_path.iterdir())  # nothing created for a bad config


def test_metrics_helpers():
    assert cr._cos(np.zeros(3), np.ones(3)) == 0.0
    assert np.isnan(cr._cos(np.array([np.inf, 0.0]), np.ones(2)))
    assert cr._stability(np.array([1.0, 1.0, 1.0, 1.01])) and not cr._stability(np.array([1.0, 2.0, 4.0, 8.0]))
    patterns = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert cr._selectivity(np.array([[1.0, 0.0]]), patterns, None) == 1.0
    assert cr._selectivity(np.array([[1.0, 1.0]]), patterns, None) == 0.0
