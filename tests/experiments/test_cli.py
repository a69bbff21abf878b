import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import cli
from experiments.registry import DEFAULT_EXPERIMENT, all_experiments


def test_list_shows_every_experiment(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in all_experiments():
        assert name in out
    assert DEFAULT_EXPERIMENT in all_experiments()


def test_info_reports_backend_and_tools(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("numpy", "backend: numpy", "cupy/GPU:", "nvcc:", "brian2:", "sparse_relu"):
        assert key in out


def test_run_unknown_name_exits_2(tmp_path, capsys):
    assert cli.main(["run", "no-such-study", "--out", str(tmp_path)]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_console_script_rejects_negative_seed():
    out = subprocess.run([sys.executable, "-m", "experiments.cli", "run", "x", "--seed", "-2"], capture_output=True, text=True)
    assert out.returncode == 2 and "non-negative" in out.stderr


def test_bare_neuro_prints_help_and_version(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "usage: neuro" in out and "run" in out and "report" in out
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("neuro (neurokit-sim) ")


def test_run_help_names_the_studies(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--sweep" in out and "--dask-local" in out
    for name in all_experiments():
        assert name in out


def test_show_lists_parameters(capsys):
    assert cli.main(["show", "compare-rules"]) == 0
    out = capsys.readouterr().out
    assert "samples" in out and "12000" in out and "3000" in out and "presentations per rate stream" in out
    assert cli.main(["show", "_t-loose"]) == 0
    assert "no declared parameters" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["run", "nope"], "unknown experiment 'nope'"),
    (["run", "_t-sweep", "--set", "xx=1"], "unknown parameter 'xx'"),
    (["run", "_t-sweep", "--set", "x=big"], "x: expected a number, got 'big'"),
    (["run", "_t-sweep", "--set", "x=20"], "x: must be <= 10.0"),
    (["run", "_t-sweep", "--set", "x"], "--set: expected key=value"),
    (["run", "_t-sweep", "--sweep", "mode=plain,cubed"], "mode: expected one of 'plain', 'squared', got 'cubed'"),
    (["run", "_t-sweep", "--seeds", "4-2"], "--seeds: bad range"),
    (["run", "_t-sweep", "--set", "x=1", "--sweep", "x=1,2"], "--sweep x: given twice (or also with --set)"),
    (["run", "_t-sweep", "--config", "missing.toml"], "--config: no such file"),
    (["run", "_t-sweep", "--workers", "0"], "--workers: expected a positive int"),
    (["run", "_t-sweep", "--workers", "2", "--dask-local", "2"], "not allowed with argument"),
    (["run", "_t-sweep", "--seed", "-1"], "non-negative"),
    (["run", "_t-sweep", "--resume", "nowhere"], "is not a run folder"),
    (["report", "nowhere"], "is not a run folder"),
    (["show", "nope"], "unknown experiment 'nope'"),
    (["frobnicate"], "invalid choice"),
])
def test_user_mistakes_are_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own checks exit from parse_args
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # nothing created


def test_out_that_is_a_file_or_not_writable(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["run", "_t-loose", "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["run", "_t-loose", "--out", str(tmp_path / "file" / "below")]) == 2
    assert "not writable" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root may write anywhere
        pytest.skip("running as a user who can write to a read-only folder")
    assert cli.main(["run", "_t-loose", "--out", str(locked / "r")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_run_sweep_quietly_then_report_rebuilds_identically(tmp_path, capsys):
    argv = ["run", "compare-rules", "--quick", "--seeds", "0-1", "--set", "samples=200", "--set", "stdp=false",
            "--sweep", "units=2,3", "--set", "rules=oja,bcm", "--out", str(tmp_path), "-q"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("results written to ")
    run = Path(out.splitlines()[0].split("results written to ")[1].strip())
    assert out.splitlines()[1] == f"report: {run / 'report.md'}"
    built = {p.relative_to(run): p.read_bytes() for p in run.rglob("*")
             if p.is_file() and (p.name in ("report.md", "summary.json", "summary.csv") or "figures" in p.parts)}
    assert {Path("figures/metrics.png"), Path("figures/metrics.svg"), Path("figures/weight_norm.svg")} <= set(built)
    for p in built:
        (run / p).unlink()
    assert cli.main(["report", str(run)]) == 0
    rebuilt = {p: (run / p).read_bytes() for p in built}
    assert rebuilt == built
    config = json.loads((run / "config.json").read_text())
    assert config["toolkit"]["name"] == "neurokit-sim" and config["versions"]["numpy"] == np.__version__
    assert {"python", "scipy", "numba", "brian2", "cupy"} <= set(config["versions"])
    assert config["grid"] == {"seeds": [0, 1], "axes": {"units": [2, 3]}, "points": 4}
    assert config["sessions"][0]["duration_s"] > 0 and config["host"] and config["backend"] == "numpy"
    assert config["git"] is None or len(config["git"]["commit"]) == 40


def test_failed_points_exit_1_with_the_count(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURO_TEST_FAIL", "raise:1")
    assert cli.main(["run", "_t-sweep", "--seeds", "0-2", "--out", str(tmp_path), "-q"]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 points failed" in err and "planned failure" in err
    (run,) = (tmp_path / "_t-sweep").iterdir()
    monkeypatch.delenv("NEURO_TEST_FAIL")
    assert cli.main(["run", "--resume", str(run), "-q"]) == 0  # the study and grid come from the run folder
    assert capsys.readouterr().out == f"results written to {run}\nreport: {run / 'report.md'}\n"
    assert len(json.loads((run / "config.json").read_text())["sessions"]) == 2


def test_python_dash_m_experiments():
    out = subprocess.run([sys.executable, "-m", "experiments", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("neuro (neurokit-sim)")


def test_progress_bar_and_log_messages_unless_quiet(tmp_path, capsys, monkeypatch):
    assert cli.main(["run", "_t-loose", "--seeds", "0-2", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "3/3" in err and "point" in err  # the tqdm bar over points
    monkeypatch.setenv("NEURO_TEST_FAIL", "raise:1")
    argv = ["run", "_t-sweep", "--seeds", "0-2", "--out", str(tmp_path)]
    assert cli.main(argv + ["-q"]) == 1
    assert "neuro: point" in capsys.readouterr().err  # warnings are shown even with -q
    monkeypatch.delenv("NEURO_TEST_FAIL")
    assert cli.main(argv) == 0
    assert "neuro: resuming" in capsys.readouterr().err  # info messages by default


def test_config_file_with_set_overrides(tmp_path, capsys):
    (tmp_path / "sweep.toml").write_text('x = 3.0\nn = 2\nmode = "squared"\n')
    argv = ["run", "_t-sweep", "--config", str(tmp_path / "sweep.toml"), "--set", "n=4", "--out", str(tmp_path), "-q"]
    assert cli.main(argv) == 0
    run = Path(capsys.readouterr().out.splitlines()[0].split("results written to ")[1].strip())
    assert json.loads((run / "config.json").read_text())["config"] == {"x": 3.0, "n": 4, "mode": "squared", "tags": ["a"]}
    assert len(json.loads((run / "results.json").read_text())["draws"]) == 4
    (tmp_path / "bad.toml").write_text('mode = "cubed"\n')
    assert cli.main(["run", "_t-sweep", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path)]) == 2
    assert "mode: expected one of" in capsys.readouterr().err


def test_info_lists_every_kernel_and_marks_cuda_that_cannot_run():
    from experiments.cli import info_lines
    from experiments.environment import KERNEL_MODULES, all_kernels
    from neuro.backend import cupy_status

    text = "\n".join(info_lines())
    kernels = all_kernels()
    assert len(kernels) >= 18 and len(KERNEL_MODULES) > 1
    for name, impls in kernels.items():
        assert f"  {name} [" in text
    usable = cupy_status()[0]
    assert ("cuda*]" in text) == (not usable) and ("sparse_relu [reference/cpu/cuda" in text)
