"""The ``activations`` study: every registered activation, values and autograd derivatives, a figure."""

import json

import numpy as np
import torch
import torch.nn.functional as TF

import experiments.studies.activations as study
from ann import activations
from experiments.registry import run_experiment


def test_activations_study_quick_writes_figure_and_table(tmp_path):
    folder = run_experiment("activations", out=tmp_path, quick=True)
    results = json.loads((folder / "results.json").read_text())
    png = folder / "figures" / "activations.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (folder / "figures" / "activations.svg").read_text().lstrip().startswith("<?xml")
    assert "![activations](figures/activations.png)" in (folder / "report.md").read_text()
    with np.load(folder / results["data"]) as curves:  # the data behind the figure
        assert curves["grid"].shape == (141,)
        assert curves["relu.value"].shape == curves["relu.derivative"].shape == (141,)
    assert set(results["activations"]) == set(activations.names())
    assert results["n_activations"] == len(activations.names())
    x = torch.tensor(results["points"], dtype=torch.float64, requires_grad=True)
    references = {
        "relu": torch.relu, "gelu": TF.gelu, "elu": TF.elu, "silu": TF.silu, "tanh": torch.tanh,
        "softplus": TF.softplus, "hard_silu": TF.hardswish, "leaky_relu": TF.leaky_relu,
        "softmax": lambda v: torch.sigmoid(v),  # first output of softmax([x, 0])
        "glu": lambda v: v * torch.sigmoid(v),  # glu([x, x])
    }
    for name, ref in references.items():
        x.grad = None
        y = ref(x)
        y.sum().backward()
        entry = results["activations"][name]
        np.testing.assert_allclose(entry["value"], y.detach().numpy(), rtol=1e-7, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(entry["derivative"], x.grad.numpy(), rtol=1e-7, atol=1e-12, err_msg=name)
    zero = results["points"].index(0.0)
    assert results["activations"]["relu"]["derivative"][zero] == 0.0  # PyTorch's convention at the kink


def test_value_and_derivative_full_grid():
    grid = np.linspace(-4, 4, 801)
    y, dy = study.value_and_derivative("mish", grid)
    x = torch.tensor(grid, requires_grad=True)
    TF.mish(x).sum().backward()
    np.testing.assert_allclose(dy, x.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert y.shape == dy.shape == grid.shape
