"""Strict JSON and atomic files for result folders.

JSON has no NaN or infinity. Every file written here is strict JSON (a strict
parser such as ``json.loads(text, parse_constant=<raise>)`` reads it): a
non-finite float, whether a Python float, a NumPy scalar of any float type or
an element of an array, is written as one of the strings ``"nan"``,
``"inf"``, ``"-inf"``. :func:`read_json` turns those three strings back into
floats.

Files are replaced atomically: written to a temporary file in the same
folder, flushed to disk (``fsync``), then renamed over the target, so a
reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_jsonable", "dumps", "read_json", "write_json", "write_text_atomic"]

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def to_jsonable(value: Any) -> Any:
    """``value`` (dicts, lists, tuples, NumPy arrays and scalars, paths) as plain JSON types; non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, complex):
        raise TypeError(f"cannot write complex value {value!r} as JSON; store real and imaginary parts")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(data: Any) -> str:
    """Indented strict JSON text of ``data`` (see :func:`to_jsonable`), ending in a newline."""
    return json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def read_json(path: str | Path) -> Any:
    """Read a file written by :func:`write_json`; the strings ``"nan"``, ``"inf"``, ``"-inf"`` become floats.

    Raises ``ValueError`` (``json.JSONDecodeError``) for text that is not strict JSON.
    """

    def reject(name: str):
        raise ValueError(f"{path}: non-standard JSON constant {name}")

    return _decode(json.loads(Path(path).read_text(), parse_constant=reject))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be shared
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as strict, indented JSON, atomically."""
    write_text_atomic(path, dumps(data))
