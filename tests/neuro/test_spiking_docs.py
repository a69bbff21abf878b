"""The python snippets of docs/readme/neuro.md run as written, in order, in one namespace."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "readme" / "neuro.md"


def test_readme_section_snippets_run(tmp_path, monkeypatch):
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"neuro.md[block {i}]", "exec"), namespace)
    assert namespace["spikes"].count.shape == (8, 80)
    assert namespace["out"].values.shape == (200, 2, 1)
