"""Every .cu file in the repository compiles to PTX for sm_80 and sm_90 (and every .cuh header with the .cu files
that include it)."""

import re
import subprocess
from pathlib import Path

import pytest

from neuro.kernels import nvcc_path

ROOT = Path(__file__).resolve().parents[2]


def _files(pattern):
    return sorted(p for p in ROOT.rglob(pattern)
                  if not any(part.startswith(".") or part in ("build", "results") for part in p.relative_to(ROOT).parts))


SOURCES = _files("*.cu")
HEADERS = _files("*.cuh")
NVCC = nvcc_path()


def test_there_are_cuda_sources():
    assert any(p.name == "sparse_relu.cu" for p in SOURCES)
    assert any(p.name == "spiking.cu" for p in SOURCES) and any(p.name == "philox.cuh" for p in HEADERS)


def test_every_header_is_included_by_a_compiled_source():
    included = {(source.parent / name).resolve() for source in SOURCES
                for name in re.findall(r'^#include\s+"([^"]+)"', source.read_text(), flags=re.M)}
    assert not [h for h in HEADERS if h.resolve() not in included], "headers no .cu file includes (never compiled)"


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed on this machine")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("source", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_nvcc_compiles(source, arch, tmp_path):
    out = subprocess.run(
        [NVCC, "--ptx", f"-arch={arch}", "-std=c++17", str(source), "-o", str(tmp_path / "out.ptx")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, f"nvcc failed on {source}:\n{out.stderr}"
    assert ".entry" in (tmp_path / "out.ptx").read_text()  # at least one kernel was emitted
