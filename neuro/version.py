"""The toolkit's version, single-sourced from the installed distribution's metadata (pyproject.toml)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neurokit-sim")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
