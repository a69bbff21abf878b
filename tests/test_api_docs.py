"""The API reference (docs/api, Sphinx autodoc) covers every public name, each with a docstring."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

INDEX = Path(__file__).resolve().parents[1] / "docs" / "api" / "index.rst"
MODULES = re.findall(r"^\.\. automodule:: (\S+)$", INDEX.read_text(), flags=re.M)


def test_the_reference_lists_every_package():
    assert {"neuro", "scans", "ann", "reservoirs", "plasticity", "experiments"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_has_a_docstring(module):
    mod = importlib.import_module(module)
    assert (mod.__doc__ or "").strip(), f"{module} has no module docstring"
    names = getattr(mod, "__all__", None)
    assert names is not None, f"{module} has no __all__ (the reference documents __all__)"
    undocumented = [n for n in names if (inspect.isclass(getattr(mod, n)) or inspect.isfunction(getattr(mod, n)))
                    and not (inspect.getdoc(getattr(mod, n)) or "").strip()]
    assert not undocumented, f"{module}: no docstring for {undocumented}"
