"""Result folders that are complete or absent: staging folders named for their process, atomic renames.

A folder is written under a hidden name, ``.staging.<pid>.<nonce>.<host>[.<tag>]``,
then renamed into place. Renaming a directory onto a name that exists and is
not empty fails, so two processes finishing at the same moment never lose a
result: the second takes the next free name. A staging folder left by a
process killed with SIGTERM or SIGKILL is removed by the next run into the
same folder, once its process (on this host) is gone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import socket
from pathlib import Path

from .jsonio import read_json

__all__ = ["STAGING", "staging_name", "clean_stale_staging", "commit_dir", "mkdir_unique", "replace_dir",
           "point_valid", "file_digest"]

log = logging.getLogger("neuro.experiments")

STAGING = ".staging."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def staging_name(tag: str = "") -> str:
    return f"{STAGING}{os.getpid()}.{secrets.token_hex(4)}.{socket.gethostname()}{('.' + tag) if tag else ''}"


def clean_stale_staging(folder: Path) -> list[Path]:
    """Remove the staging folders in ``folder`` whose process (on this host) is gone; returns what was removed."""
    removed = []
    if not folder.is_dir():
        return removed
    host = socket.gethostname()
    for entry in folder.iterdir():
        if not entry.name.startswith(STAGING):
            continue
        pid, _, rest = entry.name[len(STAGING):].partition(".")
        _nonce, _, owner = rest.partition(".")
        if not pid.isdigit() or not (owner == host or owner.startswith(host + ".")) or _pid_alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
        log.info("removed %s (left by a process that is gone)", entry)
    return removed


def commit_dir(staging: Path, parent: Path, stem: str) -> Path:
    """Rename ``staging`` (not empty) to ``parent/stem``, or ``stem-1``, ``stem-2``... if taken: atomic, collision-free."""
    k = 0
    while True:
        target = parent / (stem if k == 0 else f"{stem}-{k}")
        if not target.exists():
            try:
                staging.rename(target)  # fails if another process took the name meanwhile (target not empty)
                return target
            except OSError:
                if not target.exists():
                    raise
        k += 1


def mkdir_unique(parent: Path, stem: str) -> Path:
    """Create ``parent/stem`` (or ``stem-1``, ...) exclusively."""
    k = 0
    while True:
        target = parent / (stem if k == 0 else f"{stem}-{k}")
        try:
            target.mkdir()
            return target
        except FileExistsError:
            k += 1


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replace_dir(staging: Path, dest: Path) -> None:
    """Move a finished point into place; an existing invalid copy is replaced, a valid one kept."""
    try:
        staging.rename(dest)
    except OSError:
        if point_valid(dest):  # another executor finished the same point first
            shutil.rmtree(staging, ignore_errors=True)
            return
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)


def point_valid(folder: Path, key: str | None = None) -> bool:
    """Whether ``folder`` holds a complete point: ``point.json`` and the ``results.json`` it vouches for."""
    try:
        meta = read_json(folder / "point.json")
        ok = file_digest(folder / "results.json") == meta["results_sha256"]
        read_json(folder / "results.json")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return ok and (key is None or meta.get("key") == key)
