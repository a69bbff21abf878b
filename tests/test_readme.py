"""The python snippets of README.md and of the guides in docs/guide/ run as written, in order, one namespace per file."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.M | re.S)


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_snippets_run(path, tmp_path, monkeypatch):
    blocks = _blocks(path)
    assert blocks, f"{path.name} has no python snippets"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__readme__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            raise AssertionError(f"{path.name} python block {i} failed:\n{code}") from exc


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install -e '.[test,dist]'" in readme and "python -m pip install -e '.[test,dist]'" in ci
    assert "python -m pytest" in readme and "python -m pytest" in ci
    assert "neuro run --quick" in readme and "neuro run --quick" in ci
