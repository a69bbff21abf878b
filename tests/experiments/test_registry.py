import json

import pytest

from experiments import registry
from experiments.registry import experiment, run_experiment


@experiment("_test-ok", "writes a small result")
def _ok(ctx):
    (ctx.out_dir / "figure.txt").write_text("fig")
    return {"seed": ctx.seed, "quick": ctx.quick, "draw": float(ctx.rng().standard_normal())}


@experiment("_test-fails", "fails half way")
def _fails(ctx):
    (ctx.out_dir / "partial.txt").write_text("partial")
    raise RuntimeError("boom")


def test_run_writes_config_results_and_figures(tmp_path):
    folder = run_experiment("_test-ok", out=tmp_path, seed=3, quick=True)
    assert folder.parent == tmp_path / "_test-ok"
    config = json.loads((folder / "config.json").read_text())
    results = json.loads((folder / "results.json").read_text())
    assert config["seed"] == 3 and config["quick"] is True
    assert results["seed"] == 3 and (folder / "figure.txt").exists()
    again = run_experiment("_test-ok", out=tmp_path, seed=3, quick=True)
    assert again != folder and folder.exists()  # never overwritten
    assert json.loads((again / "results.json").read_text())["draw"] == results["draw"]  # same seed, same numbers


def test_failed_run_leaves_no_partial_results(tmp_path):
    good = run_experiment("_test-ok", out=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        run_experiment("_test-fails", out=tmp_path)
    assert not (tmp_path / "_test-fails").exists()  # not even an empty folder
    assert (good / "results.json").exists()
    fresh = tmp_path / "new" / "root"
    with pytest.raises(RuntimeError, match="boom"):
        run_experiment("_test-fails", out=fresh)
    assert not (tmp_path / "new").exists()  # folders it had to create are gone too


def test_unknown_experiment_and_bad_seed(tmp_path):
    with pytest.raises(KeyError, match="unknown experiment 'nope'"):
        run_experiment("nope", out=tmp_path)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        run_experiment("_test-ok", out=tmp_path, seed=-1)


def test_duplicate_name_rejected():
    with pytest.raises(ValueError, match="already registered"):
        experiment("_test-ok", "again")(lambda ctx: {})


def test_json_of_numpy_values(tmp_path):
    import numpy as np

    registry.write_json(tmp_path / "x.json", {"a": np.arange(3), "b": np.float32(1.5), "c": float("nan")})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [0, 1, 2], "b": 1.5, "c": "nan"}


def test_quick_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match="quick must be True or False, got 'no'"):
        run_experiment("_test-ok", out=tmp_path, quick="no")
