"""One campaign at a time per workspace: an exclusive ``flock`` on ``<root>/.rlint-campaign.lock``.

The kernel releases the lock when its holder exits, however it exits (SIGKILL included), so a
crashed campaign never leaves a stale lock behind. The file records who holds it, for the message
a second campaign gets.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".rlint-campaign.lock"


class WorkspaceBusyError(RuntimeError):
    """Another campaign (flow run) holds this workspace; starting a second one would corrupt it."""


@contextmanager
def workspace_lock(root: str | Path, holder: str = "rlint campaign"):
    """Hold the workspace lock for the ``with`` block, or raise WorkspaceBusyError at once (never waits)."""
    path = Path(root) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = path.read_text(errors="replace").strip() or "unknown holder"
            raise WorkspaceBusyError(f"{Path(root).resolve()}: another campaign is running in this workspace ({owner}); "
                                     "refusing to start a second one. Wait for it to finish or stop it first.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{holder}, pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        yield path
    finally:
        os.close(fd)  # releases the flock
