from rlint.config import load_params
from rlint.stages.bootstrap import embedded_policy
from rlint.tasks import load_task


def test_faithful_share_adds_continuations_with_no_loss_on_the_wrong_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("bootstrap:\n  hidden_size: 32\n  intermediate_size: 64\n  layers: 2\n  heads: 2\n  train_problems: 40\n  faithful_share: 0.25\n")
    params = load_params(path)
    task = load_task(params.task)
    _, tokenizer, examples = embedded_policy(params, task, seed=0)
    problems = task.problems("train", 0, 40)
    assert len(examples) == 50
    for problem, (context, target) in zip(problems, examples[:40]):
        assert tokenizer.decode(context) == problem.prompt
        assert tokenizer.decode(target, skip_special_tokens=True) == task.solution(problem)
    for problem, (context, target) in zip(problems, examples[40:]):
        text = tokenizer.decode(context)
        assert text.startswith(problem.prompt)
        completion = text[len(problem.prompt):] + tokenizer.decode(target, skip_special_tokens=True)
        # the context ends with the first wrong line: the target (the loss) holds only faithful lines
        assert task.first_error_step(problem, completion) == text[len(problem.prompt):].count("\n")
        assert task.reward(completion, problem.answer) == 0.0
    assert embedded_policy(params, task, seed=0)[2] == examples


def test_repair_share_appends_repair_lessons_and_leaves_the_rest_unchanged(tmp_path):
    from rlint.tasks.arithmetic import REPAIR_MARKER

    base = "bootstrap:\n  hidden_size: 32\n  intermediate_size: 64\n  layers: 2\n  heads: 2\n  train_problems: 40\n  faithful_share: 0.25\n"
    (tmp_path / "a.yaml").write_text(base)
    (tmp_path / "b.yaml").write_text(base + "  repair_share: 0.5\n")
    (tmp_path / "c.yaml").write_text(base + "  repair_share: 0.0\n")
    plain, taught, zero = (load_params(tmp_path / f"{name}.yaml") for name in "abc")
    task = load_task(plain.task)
    without = embedded_policy(plain, task, seed=0)[2]
    _, tokenizer, examples = embedded_policy(taught, task, seed=0)
    assert embedded_policy(zero, task, seed=0)[2] == without  # share 0: the very same examples, so the same base policy
    assert examples[:50] == without and len(examples) == 70
    heldout = {p.prompt for p in task.problems("heldout", 0, 2000)}
    for problem, (context, target) in zip(task.problems("train", 0, 20), examples[50:]):
        text = tokenizer.decode(context)
        assert text.startswith(problem.prompt) and text.endswith(REPAIR_MARKER) and problem.prompt not in heldout
        attempt = text[len(problem.prompt):-len(REPAIR_MARKER)]
        assert task.reward(attempt, problem.answer) == 0.0 and task.well_formed(attempt)
        assert tokenizer.decode(target, skip_special_tokens=True) == task.solution(problem) and target[-1] == tokenizer.eos_token_id
        # a minimal edit: the same operators and operands line by line, only values differ
        strip = lambda s: [line.split("=")[0].lstrip("0123456789") for line in s.splitlines()[:-1]]  # noqa: E731
        assert strip(attempt) == strip(task.solution(problem))


def test_bootstrap_writes_heldout_metrics_and_base_diagnostics(tmp_path):
    """The committed base through ``bootstrap.model_path``: greedy held-out metrics with standard errors, then the base
    diagnostics of 3 problems x 4 samples at the sampling temperature; ``diagnostic_prompts: 0`` turns them off."""
    import json

    from rlint.stages import bootstrap
    from tests.conftest import REPO, make_workspace

    base = {"model_path": str(REPO / "checkpoints" / "round=0"), "eval_problems": 16, "diagnostic_prompts": 3}
    root = make_workspace(tmp_path / "ws", {"bootstrap": base, "sampling": {"max_new_tokens": 64}})
    metrics = bootstrap.run(load_params(root / "params.yaml"), root)
    written = json.loads((root / "metrics" / "evaluate" / "round=0.json").read_text())
    assert written == metrics and written["evaluate_problems"] == 16 and written["final_sft_loss"] is None
    assert written["engine"] == "transformers"  # sampling.engine, as the evaluate stage uses it
    assert written["sound_accuracy"] <= written["heldout_accuracy"] and written["heldout_accuracy_sem"] >= 0
    diagnostics = written["base_diagnostics"]
    assert diagnostics["samples"] == 12 and diagnostics["prompts"] == 3 and diagnostics["temperature"] == 1.0
    assert set(diagnostics) >= {"sample_accuracy", "no_right_sample_share", "right_through_wrong_share", "first_error_distribution",
                                "step_error_rate_by_position", "samples_reaching_position"}
    assert diagnostics["samples_reaching_position"]["1"] == 12  # every sample reaches the first step
    assert sum(diagnostics["first_error_distribution"].values()) <= 12 * (1 - diagnostics["sample_accuracy"]) + 1e-9

    off = make_workspace(tmp_path / "off", {"bootstrap": {**base, "diagnostic_prompts": 0}, "sampling": {"max_new_tokens": 64}})
    assert "base_diagnostics" not in bootstrap.run(load_params(off / "params.yaml"), off)


def test_diagnostic_prompts_must_not_be_negative(tmp_path):
    import pytest

    from rlint.config import ConfigError

    path = tmp_path / "params.yaml"
    path.write_text("bootstrap:\n  diagnostic_prompts: -1\n")
    with pytest.raises(ConfigError, match="bootstrap.diagnostic_prompts must be >= 0"):
        load_params(path)
