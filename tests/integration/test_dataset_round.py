"""A real round on a real-dataset task (the JSONL fixture, math-verify rewards) with a local model directory."""

import shutil

import pytest

from rlint.config import Params, TaskConfig, with_changes
from rlint.data import read_rows
from rlint.stages import archive, correct, credit, evaluate, mine, optimize, rollout
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_dataset_round_in_process(tmp_path, tiny_checkpoint):
    shutil.copytree(tiny_checkpoint, tmp_path / "checkpoints" / "round=0")
    base = Params()
    params = with_changes(
        base,
        task=TaskConfig(name="dataset", path=str(REPO / "tests" / "fixtures" / "math_problems.jsonl"), id_field="id", heldout_share=0.25),
        rollout=with_changes(base.rollout, prompts_per_round=3, samples_per_prompt=2),
        mine=with_changes(base.mine, continuations_per_probe=2),
        correct=with_changes(base.correct, max_samples=2),
        sampling=with_changes(base.sampling, max_new_tokens=16, engine="transformers"),
        evaluate=with_changes(base.evaluate, problems=2),
    )
    archive.run(params, 0, tmp_path)  # the empty archive round 1 starts from (dvc.yaml: archive_base)
    rollout.run(params, 1, tmp_path)
    for stage in (mine, correct, archive, credit, optimize, evaluate):
        stage.run(params, 1, tmp_path)
    rollouts = read_rows(tmp_path, "rollouts", 1)
    assert len(rollouts) == 6 and all(r["true_first_error_step"] is None for r in rollouts)
    assert all(r["reward"] in (0.0, 1.0, None) for r in rollouts)
    assert len(read_rows(tmp_path, "train_set", 1)) >= 6
    hard = [c for c in read_rows(tmp_path, "corrections", 1) if c["status"] != "corrected"]
    assert len(read_rows(tmp_path, "archive", 1)) <= len(hard)  # hard cases only, one per problem and prefix
    assert (tmp_path / "checkpoints" / "round=1" / "model.safetensors").is_file()
