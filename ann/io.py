"""Save and load models and optimizer state as ``.npz`` (arrays + JSON strings; never pickle).

Layout of the archive: ``model/<state-dict name>`` arrays, ``optimizer/state/<i>/<name>``
arrays, ``optimizer/param_groups`` (JSON), ``scheduler`` (JSON), ``extra`` (JSON).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from neuro.backend import asnumpy
from neuro.validation import check_finite

__all__ = ["save", "load", "save_state_dict", "load_state_dict"]


def _json_array(obj: Any) -> np.ndarray:
    return np.array(json.dumps(obj))


def _from_json(arr: np.ndarray) -> Any:
    return json.loads(str(arr[()]))


def save_state_dict(path: str | Path, state: dict) -> None:
    """Write a flat ``{name: array}`` dict to ``path`` (``.npz``)."""
    np.savez(Path(path), **{k: asnumpy(v) for k, v in state.items()})


def _read_npz(path: str | Path) -> dict:
    """Every array of the ``.npz`` archive at ``path``; ``ValueError`` saying what is wrong with the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            head = fh.read(16)
        kind = ("a .npy array" if head.startswith(b"\x93NUMPY")
                else "a damaged (truncated?) zip archive" if head.startswith(b"PK") else "not a zip archive")
        raise ValueError(f"{path} is not an .npz archive (as numpy.savez and ann.io.save write): it is {kind}, "
                         f"starting with {head!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path} is a damaged .npz archive ({exc})") from exc
    except ValueError as exc:  # an object (pickled) array inside, or a damaged .npy member
        raise ValueError(f"{path} holds an array that cannot be read without pickle, or a damaged one ({exc})") from exc


def load_state_dict(path: str | Path, *, on_nonfinite: str = "raise") -> dict:
    """Read a flat ``{name: array}`` dict written by :func:`save_state_dict` (``allow_pickle=False``).

    ``on_nonfinite``: ``"raise"`` (``ValueError`` naming the array) or ``"warn"``
    when an array holds NaN or inf (``Module.load_state_dict`` itself, like PyTorch's, does not check).
    """
    state = _read_npz(path)
    for k, v in state.items():
        check_finite(v, f"{path}: {k!r}", on_nonfinite=on_nonfinite, stacklevel=4)
    return state


def save(path: str | Path, model=None, optimizer=None, scheduler=None, extra: dict | None = None) -> None:
    """Save a model's state dict, an optimizer's state, a scheduler's state and JSON ``extra`` to one ``.npz``."""
    arrays: dict = {}
    if model is not None:
        for k, v in model.state_dict().items():
            arrays[f"model/{k}"] = asnumpy(v)
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, st in sd["state"].items():
            for k, v in st.items():
                arrays[f"optimizer/state/{i}/{k}"] = asnumpy(v)
        arrays["optimizer/param_groups"] = _json_array(
            [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
        )
    if scheduler is not None:
        arrays["scheduler"] = _json_array(scheduler.state_dict())
    arrays["extra"] = _json_array(extra or {})
    np.savez(Path(path), **arrays)


def load(path: str | Path, model=None, optimizer=None, scheduler=None, *, on_nonfinite: str = "raise") -> dict:
    """Restore what :func:`save` wrote into ``model`` / ``optimizer`` / ``scheduler``; returns ``extra``.

    Raises ``ValueError`` for a file that is no ``.npz`` archive, optimizer
    state whose shapes do not match ``optimizer``'s parameters (another
    model's), and NaN or inf in the model's arrays (``on_nonfinite="warn"``:
    a warning instead).
    """
    files = _read_npz(path)
    if model is not None:
        for k, v in files.items():
            if k.startswith("model/"):
                check_finite(v, f"{path}: {k!r}", on_nonfinite=on_nonfinite, stacklevel=4)
    if model is not None:
        state = {k[len("model/"):]: v for k, v in files.items() if k.startswith("model/")}
        if not state:
            raise KeyError(f"{path} holds no model state")
        model.load_state_dict(state)
    if optimizer is not None:
        if "optimizer/param_groups" not in files:
            raise KeyError(f"{path} holds no optimizer state")
        groups = _from_json(files["optimizer/param_groups"])
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        state: dict = {}
        for k, v in files.items():
            if k.startswith("optimizer/state/"):
                _, _, i, name = k.split("/", 3)
                state.setdefault(int(i), {})[name] = int(v) if name == "step" else v
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scheduler is not None:
        if "scheduler" not in files:
            raise KeyError(f"{path} holds no scheduler state")
        scheduler.load_state_dict(_from_json(files["scheduler"]))
    return _from_json(files["extra"]) if "extra" in files else {}
