"""Atomic writes: every output appears complete, in one rename, or not at all.

A writer killed at any point (SIGKILL included) leaves the previous complete output or none,
plus at most a hidden ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` sibling that the next write
of the same output removes. Files are flushed before the rename, so a crash of the machine
does not publish an empty file either.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def remove_stale_temporaries(path: Path) -> None:
    """Delete ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` siblings left by a writer that was killed."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink(missing_ok=True)
    for stale in path.parent.glob(f".{path.name}.old-*"):
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file (or a directory entry) to disk, so a rename after it never publishes an empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file_atomic(path: Path, write) -> None:
    """``write(tmp)`` to a temporary sibling, flush it, then rename it onto ``path``.

    A writer killed at any point leaves the previous ``path`` (or none) and at most a hidden
    temporary, never a partial ``path``; the next write removes the temporary.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, payload: dict) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    replace_file_atomic(Path(path), lambda tmp: tmp.write_text(text))


@contextmanager
def atomic_directory(path: Path):
    """Yield a temporary sibling directory; on success it replaces ``path`` by renames only.

    The previous ``path`` is renamed aside (not deleted in place) before the new one is renamed
    in, so a process killed at any point leaves the previous complete directory, the new
    complete one, or none, never a half-written or half-deleted ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    tmp.mkdir()
    try:
        yield tmp
        for item in tmp.rglob("*"):
            if item.is_file():
                fsync_path(item)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
