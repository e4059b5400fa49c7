"""task.chat_template: prompts go to an instruct model through its own chat template; refused without one."""

import yaml

from rlint.cli import main as rlint_main
from rlint.config import load_params
from rlint.data import read_rows
from rlint.prompts import encode_prompt
from rlint.stages import archive, rollout
from rlint.tasks import load_task
from tests.conftest import REPO, instruct_model_and_dataset


def _workspace(root, chat: bool, system_prompt=None):
    data = instruct_model_and_dataset(root, chat)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["task"].update({"name": "dataset", "path": str(data), "chat_template": True, "system_prompt": system_prompt})
    params["sampling"].update({"engine": "transformers", "max_new_tokens": 8})
    params["rollout"].update({"prompts_per_round": 2, "samples_per_prompt": 2})
    params["mode"], params["credit"]["estimator"] = "outcome", "grpo"
    params["rounds"] = {"r1": {"id": 1, "prev": 0}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return load_params(root / "params.yaml")


def test_rollout_prompts_are_chat_wrapped(tmp_path):
    params = _workspace(tmp_path, chat=True, system_prompt="Answer with a number.")
    archive.run(params, 0, tmp_path)
    rollout.run(params, 1, tmp_path)
    rows = read_rows(tmp_path, "rollouts", 1)
    task = load_task(params.task)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "checkpoints" / "round=0")
    first = task.problems("train", 0, 1)[0]
    expected = f"<|system|>\nAnswer with a number.\n<|user|>\n{first.prompt}\n<|assistant|>\n"
    assert tokenizer.decode(rows[0]["prompt_token_ids"]) == expected

    class Engine:  # encode_prompt needs only the tokenizer (and encode without a chat template)
        def __init__(self, tok):
            self.tokenizer = tok

        def encode(self, text):
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    assert encode_prompt(Engine(tokenizer), task, first.prompt) == list(rows[0]["prompt_token_ids"])


def test_chat_template_without_one_is_refused_and_nothing_is_written(tmp_path, capsys):
    _workspace(tmp_path, chat=False)
    code = rlint_main(["--root", str(tmp_path), "rollout", "--round", "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(err) == 1 and "task.chat_template" in err[0] and "no chat template" in err[0], err
    assert not (tmp_path / "data").exists()


def test_system_prompt_needs_chat_template(tmp_path):
    import pytest

    from rlint.config import ConfigError, TaskConfig

    with pytest.raises(ConfigError, match="task.system_prompt: needs task.chat_template"):
        TaskConfig(name="dataset", path="x.jsonl", system_prompt="hi")
    with pytest.raises(ConfigError, match="task.chat_template"):
        TaskConfig(chat_template=True)
