"""The scaling-laws study: trains its Transformers, writes figures and fits; the IsoFLOP minima move up with compute."""

import json

import numpy as np
import pytest

import experiments.studies.scaling_laws as study
from experiments import ConfigError
from experiments import config as cfg
from experiments.cli import main
from experiments.registry import get, run_experiment

FIGURES = ("isoflop.png", "optimal_allocation.png", "loss_fit.png")


def _load(out):
    for name in FIGURES + ("results.json", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    return json.loads((out / "results.json").read_text())


def _check_runs(res):
    for r in res["runs"]:
        assert r["n_tokens"] == r["steps"] * study.TOKENS_PER_STEP
        assert 6 * r["n_params"] * r["n_tokens"] == pytest.approx(r["flops"], rel=0.1)  # C = 6 N D, steps rounded
        assert res["steps_range"][0] <= r["steps"] <= res["steps_range"][1]
        assert r["loss"] < np.log(res["corpus"]["vocab_size"])  # every model beats uniform guessing


def test_scaling_laws_smoke(tmp_path):  # about 3 s
    assert get("scaling-laws").fn is study.run
    params = {"models": [[4, 1], [8, 1], [12, 1]], "budgets": [5e7, 8e7], "seeds": 1, "n_chars": 30_000}
    res = _load(run_experiment("scaling-laws", out=tmp_path, seed=0, quick=True, params=params))
    assert len(res["runs"]) == 6
    _check_runs(res)
    a3 = res["analysis"]["approach3"]
    assert a3["a"] + a3["b"] == pytest.approx(1.0) and a3["rmse_log_loss"] < 0.05
    assert len(res["analysis"]["approach2"]["parabolas"]) == 2


@pytest.mark.slow
def test_scaling_laws_quick(tmp_path):  # about 25 s of CPU
    res = _load(run_experiment("scaling-laws", out=tmp_path, seed=0, quick=True))
    _check_runs(res)
    a2 = res["analysis"]["approach2"]
    assert len(res["seeds"]) == 2 and len(a2["flops"]) == 3
    # measured: the minima lie inside the sampled sizes and the optimal size grows with compute
    assert all(a2["interior"]) and np.all(np.diff(a2["n_opt"]) > 0)
    assert 0 < a2["a"] < 1 and a2["a"] + a2["b"] == pytest.approx(1.0)
    means = res["analysis"]["mean"]
    best = [min(loss for c, loss in zip(means["flops"], means["loss"]) if c == b) for b in res["budgets"]]
    assert np.all(np.diff(best) < 0)  # more compute, lower loss
    assert best[-1] < res["corpus"]["held_out_unigram_entropy"] - 0.5  # the best model uses context
    assert res["chinchilla"]["tokens_per_parameter_at_5.76e23"] == pytest.approx(92.6, rel=1e-2)


def test_scaling_laws_config(tmp_path, capsys):
    assert get("scaling-laws").config is study.Config
    main(["show", "scaling-laws"])  # the models as they are written after --set models=
    assert "[[4,1],[8,1],[16,1]]" in capsys.readouterr().out
    assert cfg.resolve(study.Config, True, {"models": "[[4,1],[8,1],[16,1]]"}) == study.Config.quick()
    assert study.Config.quick().models == ((4, 1), (8, 1), (16, 1))
    with pytest.raises(ConfigError, match="unknown parameter 'model'"):
        run_experiment("scaling-laws", out=tmp_path, quick=True, params={"model": [[4, 1]]})
    with pytest.raises(ConfigError, match="models: expected pairs"):
        run_experiment("scaling-laws", out=tmp_path, quick=True, params={"models": "[[4, 1, 2]]"})
    with pytest.raises(ConfigError, match="steps_range: expected min, max"):
        run_experiment("scaling-laws", out=tmp_path, quick=True, params={"steps_range": "100,10"})
    assert not any(tmp_path.iterdir())


def test_non_embedding_params():
    model = study.make_model(10, (8, 1), seed=0)
    everything = sum(p.data.size for p in model.parameters())
    tables = 10 * 8 + study.LENGTH * 8 + (8 * 10 + 10)  # embedding, positions, head
    assert study.non_embedding_params(model) == everything - tables
