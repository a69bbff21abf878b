import subprocess
import sys

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
