"""The compare-rules study: runs quickly, writes its table and figures, and its numbers agree with theory."""

import json

import numpy as np

import experiments.studies.compare_rules as cr  # registers the study (also imported by experiments.studies)
from experiments.registry import get, run_experiment


def test_compare_rules_quick_writes_table_figures_and_expected_results(tmp_path):
    assert get("compare-rules").fn is cr.run
    out = run_experiment("compare-rules", out=tmp_path, seed=3, quick=True, params={"seeds": 1})
    for name in ("table.md", "table.csv", "results.json", "config.json", "weight_norm.png", "alignment.png",
                 "receptive_fields.png", "stdp_weights.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    by = {(e["rule"], e["stream"]): e for e in res["summary"]}
    # theory: Oja and Sanger stay at unit norm and find PC1; Sanger finds the top-k in order; Hebb diverges
    assert by[("oja", "gaussian")]["pc1_alignment"] > 0.9
    assert abs(by[("oja", "gaussian")]["weight_norm"] - 1) < 0.05
    assert by[("sanger", "gaussian")]["topk_alignment"] > 0.9
    assert by[("oja", "gaussian")]["topk_alignment"] < 0.6  # independent Oja units all find PC1, not the top-k
    assert by[("hebb", "gaussian")]["weight_norm"] > 1e4 and by[("hebb", "gaussian")]["stable_fraction"] == 0
    # BCM alone becomes selective to one of two patterns
    assert by[("bcm", "two-patterns")]["selectivity"] > 0.9
    assert max(by[(r, "two-patterns")]["selectivity"] for r in ("hebb", "oja")) < 0.5
    # STDP strengthens the correlated group more
    assert res["stdp"][0]["correlated"] > res["stdp"][0]["independent"]
    table = (out / "table.md").read_text()
    assert "| sanger | gaussian |" in table and "STDP" in table


def test_metrics_helpers():
    assert cr._cos(np.zeros(3), np.ones(3)) == 0.0
    assert np.isnan(cr._cos(np.array([np.inf, 0.0]), np.ones(2)))
    assert cr._stability(np.array([1.0, 1.0, 1.0, 1.01])) and not cr._stability(np.array([1.0, 2.0, 4.0, 8.0]))
    patterns = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert cr._selectivity(np.array([[1.0, 0.0]]), patterns, None) == 1.0
    assert cr._selectivity(np.array([[1.0, 1.0]]), patterns, None) == 0.0
