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
