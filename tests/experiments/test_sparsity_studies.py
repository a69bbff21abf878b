"""The four sparsity studies: each writes its figure and a results.json holding the numbers behind it.

``relufication`` and ``sparse-inference`` run with ``--quick`` (5-10 s each on
2 cores). The ``--quick`` runs of ``sparsity-activations`` and ``dying-relu``
take 15-30 s and are marked slow; the default run uses tiny settings
(``params``) for them.
"""

import json

import numpy as np
import pytest

from experiments import ConfigError
from experiments.registry import get, run_experiment

TINY = {
    "sparsity-activations": {"seeds": 1, "mlp_steps": 6, "lm_steps": 3, "every": 3, "n_chars": 5_000},
    "dying-relu": {"seeds": 1, "steps": 3, "n_lr": 2},
}


def _load(folder):
    results = json.loads((folder / "results.json").read_text())
    png = folder / results["figure"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((folder / "config.json").read_text())["quick"] is True
    return results


def _check(name, r):
    if name == "sparsity-activations":
        for kind in ("mlp", "transformer"):
            s = r["summary"][kind]
            assert set(s) == {"relu", "leaky_relu", "gelu", "silu", "swiglu", "reglu"}
            for act in ("leaky_relu", "gelu", "silu", "swiglu"):
                assert s[act]["mean_zero_fraction"] < 0.01  # smooth / leaky: (almost) no exact zeros
            assert s["relu"]["mean_zero_fraction"] > 0.1 and s["reglu"]["mean_zero_fraction"] > 0.1
            run = r["runs"][kind]["relu"][0]
            assert len(run["steps"]) == len(run["mean_zero_fraction"])
    elif name == "dying-relu":
        for act in ("relu", "leaky_relu", "prelu", "elu"):
            grid = np.array(r["dead_fraction_mean"][act], dtype=float)
            assert grid.shape == (4, len(r["learning_rates"]))
        before = np.array(r["dead_before_mean"]["relu"])
        assert np.all(np.diff(before[:, 0]) >= 0)  # more negative initial bias, more neurons dead at init
        assert before[-1, 0] > before[0, 0]
    elif name == "relufication":
        s = r["summary"]
        assert s["gelu"]["mean_zero_fraction"] < 0.01
        for v in ("relu", "shifted_relu", "relu_after_norm"):
            assert s[v]["mean_zero_fraction"] > 0.2
            agg = r["runs"][0][v]["aggregated_sparsity"]
            assert len(agg) == len(r["windows"]) and np.all(np.diff(agg) <= 1e-12)  # longer windows use more neurons
        assert r["runs"][0]["relu_after_norm"]["changed"][-1].endswith("norm2")
    else:
        assert len(r["sweep"]["gather_matmul"]) == len(r["sparsities"])
        assert 0.0 < r["trained_model_sparsity"]["mean"] < 1.0
        for entry in r["sweep"]["gather_matmul"] + list(r["at_trained_sparsity"].values()):
            assert entry["dense_s"] > 0 and entry["sparse_s"] > 0
        densities = [e["density"] for e in r["sweep"]["SparseFFN (ReLU)"]]
        np.testing.assert_allclose(densities, 1 - np.array(r["sparsities"]), atol=1e-3)  # the sparsity asked for


@pytest.mark.parametrize("name", list(TINY))
def test_study_tiny_run_writes_results(name, tmp_path):
    _check(name, _load(run_experiment(name, out=tmp_path, quick=True, params=TINY[name], seed=1)))


SLOW = pytest.mark.slow


@pytest.mark.parametrize("name", [pytest.param("sparsity-activations", marks=SLOW), pytest.param("dying-relu", marks=SLOW),
                                  "relufication", "sparse-inference"])
def test_study_quick_run(name, tmp_path):
    _check(name, _load(run_experiment(name, out=tmp_path, quick=True)))


@pytest.mark.parametrize("name", ["sparsity-activations", "dying-relu", "relufication", "sparse-inference"])
def test_study_config_is_declared_and_checked(name, tmp_path):
    exp = get(name)
    assert exp.config is not None and exp.config.quick() != exp.config()
    with pytest.raises(ConfigError, match="unknown parameter 'stepz'"):
        run_experiment(name, out=tmp_path, quick=True, params={"stepz": 3})
    with pytest.raises(ConfigError, match="seeds: must be >= 1" if name != "sparse-inference" else "repeats: must be >= 1"):
        run_experiment(name, out=tmp_path, quick=True, params={"seeds" if name != "sparse-inference" else "repeats": 0})
    assert not any(tmp_path.iterdir())  # nothing written for a bad config
