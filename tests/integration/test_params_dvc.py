"""rlint and DVC agree about a params.yaml: what DVC refuses, rlint refuses before anything runs, and nothing is written.

Each case runs ``dvc repro`` of a stage in a tiny workspace, then the stage's own command.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_workspace

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent)


def _run(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(ws.parent), "DVC_NO_ANALYTICS": "1", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ws, capture_output=True, text=True, env=env)


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = make_workspace(tmp_path / "ws")
    assert _run(ws, "dvc", "init", "--no-scm", "-q").returncode == 0
    return ws


def _files(ws: Path) -> set[str]:
    return {str(p.relative_to(ws)) for p in ws.rglob("*") if p.is_file() and ".dvc" not in p.parts}


def test_duplicate_key_is_refused_by_both(workspace):
    (workspace / "params.yaml").write_text((workspace / "params.yaml").read_text() + "seed: 3\n")
    before = _files(workspace)
    dvc = _run(workspace, "dvc", "repro", "archive_base")
    rlint = _run(workspace, "rlint.cli", "archive", "--round", "0")
    assert dvc.returncode != 0 and "duplicate key" in dvc.stdout + dvc.stderr
    assert rlint.returncode == 2 and "duplicate key 'seed'" in rlint.stderr and len(rlint.stderr.strip().splitlines()) == 1, rlint.stderr
    assert _files(workspace) == before and not (workspace / "dvc.lock").exists()


def test_params_missing_tracked_keys_are_refused_by_both(workspace):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    del params["sampling"]["max_new_tokens"]
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = _files(workspace)
    dvc = _run(workspace, "dvc", "repro", "bootstrap")
    rlint = _run(workspace, "rlint.cli", "bootstrap")
    assert dvc.returncode != 0 and "sampling.max_new_tokens" in dvc.stdout + dvc.stderr
    assert rlint.returncode == 2 and "sampling.max_new_tokens: missing, but dvc.yaml stage 'bootstrap' tracks it" in rlint.stderr, rlint.stderr
    assert _files(workspace) == before and not (workspace / "dvc.lock").exists() and not (workspace / "checkpoints").exists()


def test_the_rounds_flow_refuses_bad_params_before_starting(workspace):
    """flows.rounds checks params.yaml before Prefect starts: one line, exit code 2, no stage run."""
    from tests.conftest import REPO

    (workspace / "params.yaml").write_text((workspace / "params.yaml").read_text() + "seed: 3\n")
    before = _files(workspace)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(workspace.parent), "PYTHONPATH": str(REPO), "PREFECT_HOME": str(workspace.parent / "prefect"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "flows.rounds", "--root", str(workspace)], cwd=workspace.parent, capture_output=True, text=True, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"flows.rounds: error: {workspace / 'params.yaml'}: line ") and "duplicate key 'seed' (first at line 1)" in lines[0]
    assert _files(workspace) == before
