"""A dataset file and a model folder named in params.yaml are versioned by content (rlint/inputs.py).

A real DVC workspace on a dataset task (a training file and a separate held-out file) and a tiny
random-weight instruct-style model outside the workspace: one round runs through ``dvc repro``
(progress lines, and the no-signal message of a model that solves nothing); editing the dataset in place, the held-out file, or the model folder makes DVC rerun exactly the
stages that read it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import instruct_model_and_dataset, make_workspace

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent)
TASK_READERS = {"bootstrap", "rollout@r1", "mine@r1", "correct@r1", "credit@r1", "evaluate@r1"}  # the stages that depend on data/inputs


def dvc(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(ws), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ws, capture_output=True, text=True, env=env)


def changed(ws: Path) -> set[str]:
    status = dvc(ws, "status", "--json")
    assert status.returncode == 0, status.stderr
    return set(json.loads(status.stdout or "{}"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    outside = tmp_path_factory.mktemp("outside")
    train = instruct_model_and_dataset(outside, chat=True)
    # three-digit answers: a random-weight model writing 8 characters does not hit one by chance (its 1-digit ones it can)
    train.write_text("".join(json.dumps({"question": f"What is {a} plus 347?", "answer": str(a + 347)}) + "\n" for a in range(12)))
    heldout = outside / "heldout.jsonl"
    heldout.write_text("".join(json.dumps({"question": f"What is {a} plus 518?", "answer": str(a + 518)}) + "\n" for a in range(4)))
    model = outside / "checkpoints" / "round=0"
    ws = make_workspace(tmp_path_factory.mktemp("ws") / "ws", {
        "task": {"name": "dataset", "path": str(train), "heldout_path": str(heldout), "chat_template": True},
        "bootstrap": {"model_path": str(model), "eval_problems": 4, "diagnostic_prompts": 0},
        "rollout": {"prompts_per_round": 3, "samples_per_prompt": 2},
        "sampling": {"max_new_tokens": 8},
        "evaluate": {"problems": 4},
    }, rounds=1)
    assert dvc(ws, "init", "--no-scm", "-q").returncode == 0
    result = dvc(ws, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return ws, train, heldout, model, result.stdout + result.stderr


def test_the_round_ran_said_it_had_no_signal_and_reported_progress(workspace):
    *_, log = workspace
    # a random-weight model solves nothing: every group all wrong, the optimize stage says so and trains nothing
    assert "optimize round 1: no learning signal: all 3 groups uniform (0 all right, 3 all wrong)" in log
    assert "failures in all-wrong groups can only give signal through repairs (mine.strategy: repair)" in log
    for progress in ("rollout round 1 6 sequences, ", "evaluate 4 sequences, ", "rollout engine: transformers"):  # the engines' summary lines
        assert progress in log, progress


def test_the_round_wrote_each_input_s_content_record(workspace):
    ws, train, heldout, model, _ = workspace
    records = {p.stem: json.loads(p.read_text()) for p in (ws / "data" / "inputs").glob("*.json")}
    assert set(records) == {"task.path", "task.heldout_path", "bootstrap.model_path"}
    assert records["task.path"]["path"] == str(train) and records["task.path"]["kind"] == "file"
    assert records["bootstrap.model_path"]["kind"] == "directory" and records["bootstrap.model_path"]["files"] >= 3
    assert (ws / "checkpoints" / "round=1").is_dir() and (ws / "metrics" / "evaluate" / "round=1.json").is_file()
    assert changed(ws) == set()


def test_editing_the_dataset_in_place_reruns_the_stages_that_read_it(workspace):
    ws, train, *_ = workspace
    train.write_text(train.read_text() + json.dumps({"question": "What is 9 plus 9?", "answer": "18"}) + "\n")
    assert changed(ws) == {"input@task.path"}  # DVC hashes the file itself; nothing downstream has run yet
    assert dvc(ws, "repro", "--single-item", "input@task.path").returncode == 0
    assert changed(ws) == TASK_READERS  # and only those: archive and optimize read no task
    result = dvc(ws, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Running stage 'bootstrap'" in result.stdout and changed(ws) == set()


def test_editing_the_held_out_file_or_the_model_folder_is_seen_too(workspace):
    ws, _, heldout, model, _ = workspace
    heldout.write_text(heldout.read_text() + json.dumps({"question": "What is 5 plus 7?", "answer": "12"}) + "\n")
    (model / "NOTES.md").write_text("a file added to the model folder\n")
    assert changed(ws) == {"input@task.heldout_path", "input@bootstrap.model_path"}
    for key in ("task.heldout_path", "bootstrap.model_path"):
        assert dvc(ws, "repro", "--single-item", f"input@{key}").returncode == 0
    assert changed(ws) == TASK_READERS
