"""The template path of identify by repair: a dataset task, a tiny random-weight instruct-style model with a chat template.

The model's repairs are noise (its weights are random); what is checked is the route: the repair
prompt is ``task.repair_template`` wrapped in the model's own chat template, the mine stage runs
it and writes repair rows, and without a chat template the stage refuses with exit 2, writing nothing.
"""


import pytest
import yaml

from rlint.cli import main as rlint_main
from rlint.config import load_params
from rlint.data import dataset_path, read_rows
from rlint.stages import mine, rollout
from rlint.identify.repair import repair_prompt_ids
from rlint.tasks import load_task
from tests.conftest import instruct_model_and_dataset

pytestmark = pytest.mark.slow


def _workspace(tmp_path, chat: bool):
    data = instruct_model_and_dataset(tmp_path, chat)
    params = {
        "task": {"name": "dataset", "path": str(data), "heldout_share": 0.2, "repair_chat": True,
                 "repair_template": "Fix this with few changes.\nQ: {question}\nWrong: {attempt}\nFixed:"},
        "sampling": {"engine": "transformers", "max_new_tokens": 16},
        "rollout": {"prompts_per_round": 3, "samples_per_prompt": 2},
        "mine": {"strategy": "repair", "repair_samples": 2},
        "credit": {"estimator": "repair_diff"},
        "archive": {"replay_share": 0.0},
        "rounds": {"r1": {"id": 1, "prev": 0}},  # every stage refuses a --round that params.rounds does not list
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return load_params(tmp_path / "params.yaml")


def test_the_repair_prompt_is_the_template_in_the_chat_template_and_the_stage_runs(tmp_path):
    params = _workspace(tmp_path, chat=True)
    rollout.run(params, 1, tmp_path)
    metrics = mine.run(params, 1, tmp_path)
    failures = read_rows(tmp_path, "failures", 1)
    assert metrics["failures"] == len(failures) > 0 and metrics["repair_tokens"] == metrics["mining_tokens"]
    assert {f["decided_by"] for f in failures} <= {"repair", "repair_unverified", "repair_rewrite", "repair_truncated", "no_steps"}
    task = load_task(params.task)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "checkpoints" / "round=0")
    problem = task.problems("train", 0, 1)[0]
    text = tokenizer.decode(repair_prompt_ids(task, tokenizer, problem.problem_id, problem.prompt, "It is 7."))
    question = problem.prompt.rstrip("\n")
    assert text == f"<|user|>\nFix this with few changes.\nQ: {question}\nWrong: It is 7.\nFixed:\n<|assistant|>\n"


def test_a_chat_template_the_tokenizer_lacks_is_refused_with_exit_2_and_nothing_written(tmp_path, capsys):
    params = _workspace(tmp_path, chat=False)
    rollout.run(params, 1, tmp_path)
    code = rlint_main(["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path), "mine", "--round", "1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "task.repair_chat: true, but the tokenizer of" in err and "has no chat template" in err
    assert not dataset_path(tmp_path, "failures", 1).exists() and not (tmp_path / "metrics" / "mine").exists()
