"""A real tiny round through DVC: every stage runs, ids tie rows together, and DVC is clean after.

Round 0 is the committed embedded base policy, taken through ``bootstrap.model_path`` (the real
model route), so the round has real failures to mine and correct.
"""

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rlint.config import load_params
from tests.conftest import REPO, make_workspace

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent)


def dvc(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(ws), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ws, capture_output=True, text=True, env=env)


def read(ws: Path, dataset: str, round_id: int) -> list[dict]:
    return pq.read_table(ws / "data" / dataset / f"round={round_id}" / "part-0.parquet").to_pylist()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("dvc") / "ws", {
        "bootstrap": {"model_path": str(REPO / "checkpoints" / "round=0"), "eval_problems": 16},
        "rollout": {"prompts_per_round": 8, "samples_per_prompt": 4},
        "mine": {"continuations_per_probe": 4},
        "sampling": {"max_new_tokens": 64},  # the committed base's longest chains need more than the tiny default's 40 tokens
    }, rounds=1)
    assert dvc(ws, "init", "--no-scm", "-q").returncode == 0
    result = dvc(ws, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return ws


def test_every_stage_wrote_its_output(workspace):
    for dataset in ("rollouts", "failures", "continuations", "branches", "corrections", "train_set", "eval"):
        assert (workspace / "data" / dataset / "round=1" / "part-0.parquet").is_file(), dataset
    assert (workspace / "checkpoints" / "round=1" / "model.safetensors").is_file()
    assert not list((workspace / "checkpoints").glob("round=1/*.bin"))


def test_ids_tie_rows_across_stages(workspace):
    rollouts = {r["rollout_id"]: r for r in read(workspace, "rollouts", 1)}
    assert len(rollouts) == 32 and {r["policy_version"] for r in rollouts.values()} == {0}
    failures = read(workspace, "failures", 1)
    # mine.failures_per_problem: the first failures of each problem, in rollout order
    per_problem_limit = load_params(workspace / "params.yaml").mine.failures_per_problem
    per_problem = {}
    for rollout_id, r in rollouts.items():
        if r["reward"] != 1.0:
            per_problem.setdefault(r["problem_id"], []).append(rollout_id)
    expected = {i for ids in per_problem.values() for i in sorted(ids, key=lambda i: rollouts[i]["sample_index"])[:per_problem_limit]}
    assert {f["rollout_id"] for f in failures} == expected
    assert any(f["first_error_step"] is not None for f in failures), "the base policy should fail somewhere mineable"
    for cont in read(workspace, "continuations", 1):
        assert cont["failure_id"] in rollouts and cont["continuation_id"].startswith(cont["failure_id"])
    for branch in read(workspace, "branches", 1):
        parent = rollouts[branch["parent_rollout_id"]]
        assert branch["reward"] == 1.0 and branch["branch_token_offset"] <= len(parent["token_ids"])
    examples = read(workspace, "train_set", 1)
    assert {e["rollout_id"] for e in examples} == set(rollouts)
    assert all(len(e["token_ids"]) == len(e["advantages"]) == len(e["loss_weights"]) == len(e["logprobs"]) for e in examples)


def test_dvc_is_up_to_date_and_a_second_repro_runs_nothing(workspace):
    status = dvc(workspace, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout
    again = dvc(workspace, "repro")
    assert again.returncode == 0 and "Running stage" not in again.stdout, again.stdout


def test_metrics_are_dvc_metrics(workspace):
    shown = dvc(workspace, "metrics", "show")
    assert shown.returncode == 0
    for key in ("heldout_accuracy", "train_accuracy", "failures_located", "corrected_branches", "logprob_mismatch"):
        assert key in shown.stdout, key
