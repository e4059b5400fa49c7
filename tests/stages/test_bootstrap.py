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
