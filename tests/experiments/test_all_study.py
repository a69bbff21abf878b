"""Study ``all``: every registered study's quick variant and one report linking each."""

import pytest

from experiments import DEFAULT_EXPERIMENT, experiment, run_experiment
from experiments.jsonio import read_json
from experiments.studies import all_studies


@experiment("_t-broken", "a study that fails (for the 'all' test)")
def _broken(ctx):
    raise ArithmeticError("planned")


def test_all_is_the_default_and_links_every_study(tmp_path, monkeypatch):
    assert DEFAULT_EXPERIMENT == "all"
    from experiments.registry import all_experiments

    registry = all_experiments()
    monkeypatch.setattr(all_studies, "all_experiments", lambda: {k: registry[k] for k in ("activations", "compare-rules", "all")})
    folder = run_experiment("all", out=tmp_path, seed=3, quick=True)
    results = read_json(folder / "results.json")
    assert list(results["studies"]) == ["activations", "compare-rules"]
    report = (folder / "report.md").read_text()
    for name, s in results["studies"].items():
        assert s["ok"] and (folder / s["folder"] / "report.md").is_file()
        assert f"[report]({s['folder']}/report.md)" in report
        assert read_json(folder / s["folder"] / "config.json")["points"][0]["seed"] == 3
        assert s["seconds"] > 0


def test_all_runs_the_other_studies_when_one_fails_and_then_fails(tmp_path, monkeypatch):
    from experiments import registry as reg

    registry = reg.all_experiments()
    monkeypatch.setitem(reg._EXPERIMENTS, "broken", registry["_t-broken"])  # public name: "_" studies are skipped
    monkeypatch.setattr(all_studies, "all_experiments", lambda: {"broken": registry["_t-broken"],
                                                                "activations": registry["activations"]})
    # the broken study comes first: "1 of 2 failed" says the one after it still ran and finished
    with pytest.raises(RuntimeError, match="1 of 2 studies failed: broken: ArithmeticError: planned"):
        run_experiment("all", out=tmp_path, quick=True)
    assert not any(tmp_path.rglob("results.json"))  # a failed run leaves nothing behind


def test_private_studies_are_skipped(monkeypatch):
    seen = []
    monkeypatch.setattr(all_studies, "all_experiments", lambda: {"_t-broken": None, "all": None})

    class Ctx:
        out_dir, seed = None, 0

        @staticmethod
        def progress(names, desc=""):
            seen.extend(names)
            return names

    assert all_studies.run(Ctx())["studies"] == {} and seen == []


def test_all_takes_no_parameters(tmp_path):
    from experiments import ConfigError

    with pytest.raises(ConfigError, match="seeds_per_study"):
        run_experiment("all", out=tmp_path, quick=True, params={"seeds_per_study": 2})
    assert not any(tmp_path.iterdir())
