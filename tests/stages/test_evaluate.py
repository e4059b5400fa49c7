"""evaluate (and rollout) metrics: held-out accuracy with its standard error, sound accuracy, right answers through wrong steps."""

from __future__ import annotations

import json
import shutil

from rlint.config import Params, TaskConfig, load_params, with_changes
from rlint.data import read_rows
from rlint.stages import archive, evaluate, rollout
from tests.conftest import REPO, make_workspace

BASE = REPO / "checkpoints" / "round=0"  # the committed embedded base: it solves some problems, through wrong steps or not


def test_evaluate_writes_sound_accuracy_and_standard_errors(tmp_path):
    # the committed base's longest chains need more than the tiny default's 40 tokens
    root = make_workspace(tmp_path / "ws", {"evaluate": {"problems": 48}, "sampling": {"max_new_tokens": 64}})
    shutil.copytree(BASE, root / "checkpoints" / "round=1")
    metrics = evaluate.run(load_params(root / "params.yaml"), 1, root)
    written = json.loads((root / "metrics" / "evaluate" / "round=1.json").read_text())
    assert written == metrics and written["evaluate_problems"] == 48
    rows = read_rows(root, "eval", 1)
    right = sum(r["reward"] == 1.0 for r in rows) / 48
    sound = sum(r["reward"] == 1.0 and r["true_first_error_step"] is None for r in rows) / 48
    assert written["heldout_accuracy"] == round(right, 4) and written["sound_accuracy"] == round(sound, 4)
    assert written["heldout_accuracy_sem"] == round((right * (1 - right) / 48) ** 0.5, 4)
    assert written["sound_accuracy_sem"] == round((sound * (1 - sound) / 48) ** 0.5, 4)
    assert 0 < written["sound_accuracy"] <= written["heldout_accuracy"]


def test_rollout_reports_right_rollouts_through_a_wrong_step(tmp_path):
    root = make_workspace(tmp_path / "ws", {"rollout": {"prompts_per_round": 8, "samples_per_prompt": 4}, "sampling": {"max_new_tokens": 64}})
    shutil.copytree(BASE, root / "checkpoints" / "round=0")
    params = load_params(root / "params.yaml")
    archive.run(params, 0, root)
    metrics = rollout.run(params, 1, root)
    right = [r for r in read_rows(root, "rollouts", 1) if r["reward"] == 1.0]
    assert right, "the base solves some training problems"
    assert metrics["right_through_wrong_share"] == round(sum(r["true_first_error_step"] is not None for r in right) / len(right), 4)


def test_a_task_without_step_checker_has_no_sound_accuracy(tmp_path, tiny_checkpoint):
    shutil.copytree(tiny_checkpoint, tmp_path / "checkpoints" / "round=1")
    base = Params()
    params = with_changes(
        base, task=TaskConfig(name="dataset", path=str(REPO / "tests" / "fixtures" / "math_problems.jsonl"), id_field="id", heldout_share=0.25),
        sampling=with_changes(base.sampling, max_new_tokens=8, engine="transformers"), evaluate=with_changes(base.evaluate, problems=2),
    )
    metrics = evaluate.run(params, 1, tmp_path)
    assert metrics["sound_accuracy"] is None and metrics["sound_accuracy_sem"] is None
    assert metrics["evaluate_problems"] == 2 and "heldout_accuracy_sem" in metrics
