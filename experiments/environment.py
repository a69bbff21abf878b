"""What a run records about where it ran: versions, git commit, backend, host.

Versions come from the installed packages' metadata (``importlib.metadata``),
so nothing heavy (Brian2, CuPy) is imported to learn them.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

__all__ = ["toolkit_version", "git_commit", "library_versions", "environment", "all_kernels"]

#: The modules whose import registers the toolkit's kernels in :mod:`neuro.kernels` (each package
#: registers its own, on import, so that ``import neuro`` stays light).
KERNEL_MODULES = ("neuro.kernels.sparse", "neuro.kernels.gather_matmul", "neuro.neurons", "neuro.synapses",
                  "neuro.device_engine", "scans", "ann", "ann.nn.recurrent_cpu", "ann.ssm_kernel",
                  "reservoirs.recurrence", "plasticity.stdp_kernels")


def all_kernels() -> dict[str, dict[str, bool]]:
    """Every kernel of the toolkit (importing the modules that register them), as ``neuro.kernels.available()``."""
    from importlib import import_module

    from neuro import kernels

    for name in KERNEL_MODULES:
        import_module(name)
    return kernels.available()

LIBRARIES = ("numpy", "scipy", "numba", "brian2", "matplotlib")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def toolkit_version() -> str:
    """The installed version of ``neurokit-sim`` (``"unknown"`` when run from an uninstalled checkout)."""
    return _version("neurokit-sim") or "unknown"


def _cupy_version() -> str | None:
    """CuPy's version from whichever CuPy wheel is installed (``cupy``, ``cupy-cuda12x``, ...), without importing it."""
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == "cupy" or name.startswith("cupy-"):
            return dist.version
    return None


@cache
def git_commit() -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout holding this package, or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def library_versions() -> dict[str, str | None]:
    """Python and the scientific libraries (None: not installed)."""
    versions = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in LIBRARIES})
    versions["cupy"] = _cupy_version()
    return versions


def environment() -> dict:
    """Everything ``config.json`` records about this process's environment."""
    from neuro.backend import get_backend

    return {
        "toolkit": {"name": "neurokit-sim", "version": toolkit_version()},
        "git": git_commit(),
        "versions": library_versions(),
        "backend": get_backend(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
