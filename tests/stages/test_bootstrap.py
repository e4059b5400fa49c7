from rlint.config import load_params
from rlint.stages.bootstrap import embedded_policy
from rlint.tasks import load_task
from tests.conftest import make_workspace


def test_faithful_share_adds_continuations_with_no_loss_on_the_wrong_line(tmp_path):
    ws = make_workspace(tmp_path / "ws", {"bootstrap": {"hidden_size": 32, "intermediate_size": 64, "layers": 2, "heads": 2,
                                                       "train_problems": 40, "faithful_share": 0.25}})
    params = load_params(ws / "params.yaml")
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
