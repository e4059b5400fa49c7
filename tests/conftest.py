"""Shared fixtures: a tiny random policy checkpoint and workspaces built from the repo's files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained 2-layer Llama with the embedded tokenizer, saved as a checkpoint."""
    from rlint.policy import build_char_tokenizer, build_tiny_llama, save_policy

    path = tmp_path_factory.mktemp("tiny") / "model"
    tokenizer = build_char_tokenizer()
    model = build_tiny_llama(len(tokenizer), tokenizer, hidden_size=32, intermediate_size=64, layers=2, heads=2, max_length=128, seed=0)
    save_policy(model, tokenizer, path, {"origin": "test"})
    return path


TINY_PARAMS = {
    "bootstrap": {"hidden_size": 32, "intermediate_size": 64, "layers": 2, "heads": 2, "steps": 30, "batch_size": 16, "eval_problems": 8,
                  "diagnostic_prompts": 2},
    "rollout": {"prompts_per_round": 4, "samples_per_prompt": 4},
    "mine": {"continuations_per_probe": 2},
    "correct": {"max_samples": 2},
    "optimize": {"epochs": 1, "minibatch_size": 8},
    "evaluate": {"problems": 8},
    # the transformers engine keeps these workspaces fast; tests/engine/test_vllm.py runs vLLM
    "sampling": {"max_new_tokens": 40, "engine": "transformers"},
}


def make_workspace(path: Path, overrides: dict | None = None, rounds: int = 1) -> Path:
    """A DVC workspace with the repo's dvc.yaml and a tiny params.yaml (no git)."""
    import yaml

    from rlint.inputs import declared_inputs

    path.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, path / name)
    # code dependencies of the stages, so DVC can hash them
    shutil.copytree(REPO / "rlint", path / "rlint", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    merged = {**TINY_PARAMS, **(overrides or {})}
    # an override of other sampling keys keeps the engine pin unless it names an engine itself
    merged["sampling"] = {"engine": TINY_PARAMS["sampling"]["engine"], **merged["sampling"]}
    for section, values in merged.items():
        if isinstance(values, dict):
            params[section].update(values)
        else:
            params[section] = values
    params["rounds"] = {f"r{k}": {"id": k, "prev": k - 1} for k in range(1, rounds + 1)}
    if "inputs" not in (overrides or {}):  # what params.yaml must list for DVC to version the paths it names (rlint/inputs.py)
        params["inputs"] = declared_inputs(params["task"].get("path"), params["task"].get("heldout_path"), params["bootstrap"].get("model_path"))
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (path / "data" / "inputs").mkdir(parents=True, exist_ok=True)  # the inputs' records; in a clone, git holds its README
    shutil.copy(REPO / "data" / "inputs" / "README.md", path / "data" / "inputs" / "README.md")
    return path


CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"


def instruct_model_and_dataset(root: Path, chat: bool) -> Path:
    """A tiny random-weight instruct-style model in ``root/checkpoints/round=0`` (printable-character
    tokenizer, :data:`CHAT_TEMPLATE` when ``chat``) and a 12-problem JSONL dataset; returns the dataset's path."""
    import json
    import string

    from rlint.policy import build_char_tokenizer, build_tiny_llama, save_policy

    tokenizer = build_char_tokenizer(string.printable)
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    model = build_tiny_llama(len(tokenizer), tokenizer, 32, 64, 2, 2, 512, seed=0)
    save_policy(model, tokenizer, root / "checkpoints" / "round=0", {"origin": "test"})
    data = root / "problems.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {a} plus {b}?", "answer": str(a + b)}) + "\n" for a in range(6) for b in range(2)))
    return data
