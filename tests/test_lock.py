"""One campaign per workspace: a second one is refused at once with a clear message and changes nothing."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys

import pytest

from flows.lock import WorkspaceBusyError, workspace_lock
from tests.conftest import REPO

HOLDER = "import sys, time\nfrom flows.lock import workspace_lock\nwith workspace_lock(sys.argv[1], 'test holder'):\n    print('held', flush=True)\n    time.sleep(600)\n"


def _snapshot(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir() if p.is_file() and p.name != ".rlint-campaign.lock"}


@pytest.fixture
def held(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == b"held"
    yield tmp_path, proc
    proc.kill()
    proc.wait()


def test_second_holder_is_refused_and_a_killed_holder_frees_the_lock(held):
    root, proc = held
    with pytest.raises(WorkspaceBusyError, match=rf"another campaign is running in this workspace \(test holder, pid {proc.pid} "):
        with workspace_lock(root):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with workspace_lock(root, "next") as path:  # the kernel released the lock of the killed holder
        assert "next, pid" in path.read_text()


def test_flows_refuse_a_busy_workspace_and_touch_nothing(held):
    from flows.campaign import campaign
    from flows.rounds import run_rounds

    root, _ = held
    before = _snapshot(root)
    for call in (lambda: run_rounds.fn(root=str(root)), lambda: campaign.fn(root=str(root), rounds_per_run=2)):
        with pytest.raises(WorkspaceBusyError, match="refusing to start a second one"):
            call()
    assert _snapshot(root) == before and not (root / "data").exists() and not (root / ".dvc").exists()
