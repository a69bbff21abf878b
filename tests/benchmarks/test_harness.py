import json

import pytest

from benchmarks.__main__ import available, main
from benchmarks.harness import compare, write_jsonl


def test_compare_runs_both_alternately_and_reports_ratio(tmp_path):
    calls = []
    result = compare("t", lambda: calls.append("a"), lambda: calls.append("b"), repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert result.ratio == pytest.approx(result.ours_median_s / result.peer_median_s)
    write_jsonl([result], tmp_path / "r.jsonl")
    assert json.loads((tmp_path / "r.jsonl").read_text())["name"] == "t"
    with pytest.raises(ValueError, match="repeats"):
        compare("t", lambda: 0, lambda: 0, repeats=0)


def test_cli_lists_and_rejects_unknown(capsys, tmp_path):
    assert "sparse_relu" in available()
    assert main(["list"]) == 0
    with pytest.raises(SystemExit):
        main(["nope", "--out", str(tmp_path / "x.jsonl")])


def test_alternate_runs_in_turn_with_warmup_and_setup():
    from experiments.timing import alternate

    calls = []
    times = alternate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 2, warmup=1,
                      setup=lambda: calls.append("s"))
    assert calls == ["a", "b", "s", "a", "s", "b", "s", "a", "s", "b"]  # warm-up without setup, then alternated
    assert [len(v) for v in times.values()] == [2, 2] and all(t >= 0 for v in times.values() for t in v)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        alternate({"a": lambda: None}, 0)
