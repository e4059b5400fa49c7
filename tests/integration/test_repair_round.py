"""One round with ``mine.strategy: repair`` through DVC: the repair rows, their branches and the repair metrics.

Round 0 is the committed embedded base policy, taken through ``bootstrap.model_path``.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_workspace
from tests.integration.test_round_dvc import read

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent)


def dvc(ws: Path, *args: str) -> subprocess.CompletedProcess:
    # PYTHONPATH: the stages run this checkout's rlint, whichever checkout the environment installed
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(ws), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ws, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("dvc-repair") / "ws", {
        "bootstrap": {"model_path": str(REPO / "checkpoints" / "round=0"), "eval_problems": 8},
        "rollout": {"prompts_per_round": 6, "samples_per_prompt": 4},
        "mine": {"strategy": "repair", "repair_samples": 2, "repair_temperature": 1.0},  # the repairer is trained: at the loss's temperature
        "credit": {"estimator": "repair_diff", "repairer_weight": 1.0},
    }, rounds=1)
    assert dvc(ws, "init", "--no-scm", "-q").returncode == 0
    result = dvc(ws, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return ws


def test_repair_rows_branches_and_metrics(workspace):
    import json

    rollouts = {r["rollout_id"]: r for r in read(workspace, "rollouts", 1)}
    failures = read(workspace, "failures", 1)
    attempts = read(workspace, "continuations", 1)  # the repair attempts, kept for the repairer's own credit
    assert failures and attempts and {a["stage"] for a in attempts} == {"repair"}
    by_failure = {f["failure_id"]: f for f in failures}
    for f in failures:
        mine_attempts = [a for a in attempts if a["failure_id"] == f["failure_id"]]
        assert len(mine_attempts) == f["repair_attempts"] and sum(len(a["token_ids"]) for a in mine_attempts) == f["tokens_spent"]
    for f in failures:
        assert f["decided_by"] in ("repair", "repair_unverified", "repair_rewrite", "repair_in_prefix", "repair_truncated", "no_steps")
        assert f["repair_attempts"] == (2 if f["decided_by"] not in ("repair_truncated", "no_steps") else 0)
        assert (f["first_error_step"] is not None) == (f["decided_by"] == "repair")
    mine = json.loads((workspace / "metrics" / "mine" / "round=1.json").read_text())
    assert mine["repair_tokens"] == mine["mining_tokens"] == sum(f["tokens_spent"] for f in failures) > 0
    branches = read(workspace, "branches", 1)
    assert {b["failure_id"] for b in branches} == {f["failure_id"] for f in failures if f["decided_by"] == "repair"}
    for b in branches:
        assert b["kind"] == "repair" and b["parent_rollout_id"] in rollouts and b["reward"] == 1.0
    examples = read(workspace, "train_set", 1)
    assert {e["example_id"] for e in examples if e["kind"] == "repair"} == {b["branch_id"] for b in branches}
    trained = [e for e in examples if e["kind"] == "repair_attempt"]  # attempts of failures with both outcomes among them
    mixed = {f["failure_id"] for f in failures if 0 < f["repair_verified"] < f["repair_attempts"]}
    assert {e["example_id"].rsplit("-repair", 1)[0] for e in trained} == mixed
    for e in trained:
        assert e["context_token_ids"] == by_failure[e["rollout_id"]]["repair_prompt_token_ids"]
    assert (workspace / "checkpoints" / "round=1" / "model.safetensors").is_file()
    status = dvc(workspace, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout
