"""The python snippets of docs/readme/ann.md (the README's ann section) run as written."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "readme" / "ann.md"


def test_ann_readme_snippets_run(tmp_path, monkeypatch):
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"ann.md[block {i}]", "exec"), namespace)
    assert (tmp_path / "digits_mlp.npz").exists()
