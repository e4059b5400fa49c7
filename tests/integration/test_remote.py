"""A round's data travels through a DVC remote: run one tiny round in a git + DVC workspace, ``dvc push``
to a local-directory remote, ``git clone`` the workspace elsewhere and ``dvc pull`` there. The clone then
holds every output with the same bytes, ``dvc status`` is clean in it (nothing to rerun), the
``cache: false`` files (metrics, ``checkpoints/round=0``, ``data/inputs``) came through git, and
``rlint audit`` prints the same table in both, byte for byte. The commands are docs/scaling.md's.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_faults import BIN, ENV, dvc, new_workspace

pytestmark = [pytest.mark.slow, pytest.mark.scale]
GIT_ENV = {"GIT_AUTHOR_NAME": "rlint test", "GIT_AUTHOR_EMAIL": "test@rlint", "GIT_COMMITTER_NAME": "rlint test",
           "GIT_COMMITTER_EMAIL": "test@rlint", "GIT_CONFIG_NOSYSTEM": "1"}
# what a workspace keeps out of git: the Prefect home, the campaign lock, the audit's cache and plots
# (DVC writes the .gitignore entries of the outputs it caches itself)
WORKSPACE_GITIGNORE = ".prefect/\n.rlint-campaign.lock\naudit/\n"


def run(cwd: Path, *args: str) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**ENV, **GIT_ENV, "HOME": str(cwd)})
    assert done.returncode == 0, f"{' '.join(args)} in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def file_hashes(ws: Path) -> dict[str, str]:
    """sha256 of every file under data/, checkpoints/ and metrics/, hidden ones included."""
    return {str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
            for top in ("data", "checkpoints", "metrics") for p in sorted((ws / top).rglob("*")) if p.is_file()}


def test_a_round_pushed_to_a_remote_is_pulled_whole_into_a_clone(tmp_path, tiny_checkpoint):
    ws = new_workspace(tmp_path / "ws", tiny_checkpoint, rounds=1)  # DVC without git: redone below with git
    shutil.rmtree(ws / ".dvc")
    (ws / ".gitignore").write_text(WORKSPACE_GITIGNORE)
    run(ws, "git", "init", "-q", "-b", "main")
    run(ws, sys.executable, "-m", "dvc", "init", "-q")
    repro = dvc(ws, "repro")
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    storage = tmp_path / "storage"  # a directory remote; on a cluster an s3://, ssh:// or shared-disk URL
    run(ws, sys.executable, "-m", "dvc", "remote", "add", "-d", "storage", str(storage))
    run(ws, sys.executable, "-m", "dvc", "push")
    run(ws, "git", "add", "-A")
    run(ws, "git", "commit", "-qm", "round 1")
    assert not run(ws, "git", "status", "--porcelain"), "the round left files neither git nor DVC tracks"
    tracked = run(ws, "git", "ls-files").splitlines()
    metrics = sorted(str(p.relative_to(ws)) for p in (ws / "metrics").rglob("*.json"))
    assert "metrics/evaluate/round=1.json" in metrics and set(metrics) <= set(tracked)  # cache: false → git
    assert "checkpoints/round=0/model.safetensors" in tracked and "data/inputs/bootstrap.model_path.json" in tracked
    assert not any(name.startswith(("data/rollouts/", "checkpoints/round=1/")) and not name.endswith(".gitignore") for name in tracked)

    clone = tmp_path / "elsewhere" / "ws"
    clone.parent.mkdir()
    run(tmp_path, "git", "clone", "-q", str(ws), str(clone))
    assert not (clone / "data" / "rollouts").exists() or not any((clone / "data" / "rollouts").glob("round=*"))
    run(clone, sys.executable, "-m", "dvc", "pull")

    assert file_hashes(clone) == file_hashes(ws)
    status = dvc(clone, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    assert "in sync" in dvc(clone, "status", "--cloud").stdout  # the clone's cache and the remote agree

    def audit(where: Path) -> str:  # as the README runs it: `rlint audit` in the workspace
        env = {**ENV, "HOME": str(where), "PYTHONPATH": str(REPO)}
        done = subprocess.run([f"{BIN}/rlint", "audit"], cwd=where, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    here, there = audit(ws), audit(clone)
    assert here == there and "round" in here and len(here.splitlines()) > 5, (here, there)
    print(f"\nremote: {len(file_hashes(ws))} files pushed and pulled byte-identical; dvc status clean in the clone; "
          f"audit identical ({len(here.splitlines())} lines)")
