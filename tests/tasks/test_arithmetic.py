import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlint.tasks.arithmetic import ArithmeticConfig, ArithmeticTask
from rlint.tasks.chains import parse_prompt, solve
from rlint.tasks.base import TaskInputError


def test_problems_are_deterministic_and_sliceable():
    task = ArithmeticTask(ArithmeticConfig(seed=3))
    first = task.problems("train", 0, 50)
    assert first == ArithmeticTask(ArithmeticConfig(seed=3)).problems("train", 0, 50)
    assert task.problems("train", 20, 10) == first[20:30]
    assert first != ArithmeticTask(ArithmeticConfig(seed=4)).problems("train", 0, 50)


def test_splits_are_disjoint():
    task = ArithmeticTask()
    train = {p.prompt for p in task.problems("train", 0, 2000)}
    heldout = {p.prompt for p in task.problems("heldout", 0, 500)}
    assert not train & heldout
    assert len({p.problem_id for p in task.problems("heldout", 0, 500)}) == 500


def test_difficulty_parameters_are_respected():
    cfg = ArithmeticConfig(min_steps=2, max_steps=3, operand_max=5, value_max=40, operators="+-")
    task = ArithmeticTask(cfg)
    lengths = set()
    for problem in task.problems("train", 0, 300):
        start, ops = parse_prompt(problem.prompt)
        lengths.add(len(ops))
        assert all(op in "+-" and 1 <= b <= 5 for op, b in ops)
        value = start
        for line in solve(start, ops)[:-1]:
            value = int(line.split("=")[1])
            assert 0 <= value <= 40
        assert problem.answer == str(value)
    assert lengths == {2, 3}


def test_reference_solution_scores_one_and_has_no_error():
    task = ArithmeticTask()
    for problem in task.problems("heldout", 0, 100):
        solution = task.solution(problem)
        assert task.reward(solution, problem.answer) == 1.0
        assert task.first_error_step(problem, solution) is None


@pytest.mark.parametrize("completion,expected", [
    ("1+2=3\nA:3\n", 1.0), ("A:4\n", 0.0), ("1+2=3\n", None), ("", None), ("A:abc\n", None),
    ("A:3\nA:4\n", 1.0), ("A:" + "9" * 40 + "\n", None),
])
def test_outcome_verifier(completion, expected):
    assert ArithmeticTask().reward(completion, "3") == expected


def test_step_checker_names_the_first_wrong_line():
    task = ArithmeticTask()
    problem = task.problems("train", 0, 1)[0]
    lines = task.solution(problem).split("\n")[:-1]
    for wrong in range(len(lines)):
        broken = list(lines)
        broken[wrong] = broken[wrong] + "0"
        assert task.first_error_step(problem, "\n".join(broken) + "\n") == wrong + 1
    assert task.first_error_step(problem, "\n".join(lines[:2])) == 3  # a missing line is wrong


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_verifiers_never_raise_on_arbitrary_text(text):
    task = ArithmeticTask()
    problem = task.problems("train", 0, 1)[0]
    assert task.reward(text, problem.answer) in (0.0, 1.0, None)
    step = task.first_error_step(problem, text)
    assert step is None or 1 <= step


@pytest.mark.parametrize("kwargs", [
    {"min_steps": 0}, {"min_steps": 4, "max_steps": 3}, {"operators": "/"}, {"operators": ""},
    {"heldout_share": 1.0}, {"operand_max": 0}, {"modulus": 1}, {"modulus": 2520}, {"modulus": 10**7},
])
def test_bad_difficulty_is_refused(kwargs):
    with pytest.raises(TaskInputError):
        ArithmeticConfig(**kwargs)


def test_faithful_example_goes_on_from_its_one_wrong_line():
    import random

    task = ArithmeticTask()
    rng = random.Random(0)
    for problem in task.problems("train", 0, 300):
        context, target = task.faithful_example(problem, rng)
        completion = context + target
        written = completion.split("\n")[:-1]
        reference = task.solution(problem).split("\n")[:-1]
        wrong = task.first_error_step(problem, completion)
        # exactly the last line of the context is the first wrong line, and its result stays in range
        assert wrong == len(context.split("\n")) - 1
        assert written[: wrong - 1] == reference[: wrong - 1]
        assert 0 <= int(written[wrong - 1].split("=")[1]) <= task.config.value_max
        # every later line is computed from the value actually written before it
        value = int(written[wrong - 1].split("=")[1])
        start, ops = parse_prompt(problem.prompt)
        for line, (op, operand) in zip(written[wrong:], ops[wrong:]):
            assert line == solve(value, [(op, operand)])[0]
            value = int(line.split("=")[1])
        assert written[-1] == f"A:{value}"
        assert task.reward(completion, problem.answer) == 0.0


def test_modular_chains_keep_every_value_below_the_modulus_and_every_step_one_to_one():
    """``task.modulus``: values reduced modulo it, multipliers coprime to it, so a wrong line always reaches a wrong answer."""
    import random

    task = ArithmeticTask(ArithmeticConfig(modulus=100, min_steps=6, max_steps=8))
    problems = task.problems("train", 0, 300)
    assert problems == ArithmeticTask(ArithmeticConfig(modulus=100, min_steps=6, max_steps=8)).problems("train", 0, 300)
    assert {p.prompt for p in problems}.isdisjoint(p.prompt for p in task.problems("heldout", 0, 300))
    for index, problem in enumerate(problems):
        start, ops = parse_prompt(problem.prompt)
        assert 6 <= len(ops) <= 8 and 0 <= start < 100
        assert all(operand in (3, 7, 9) for op, operand in ops if op == "*")
        value = start
        for line, (op, operand) in zip(task.solution(problem).split("\n"), ops):
            expected = {"+": value + operand, "-": value - operand, "*": value * operand}[op] % 100
            assert line == f"{value}{op}{operand}={expected}"
            value = expected
        assert problem.answer == str(value)
        attempt = task.wrong_attempt(problem, random.Random(index))
        assert attempt and task.reward(attempt, problem.answer) == 0.0 and task.first_error_step(problem, attempt) is not None
        context, target = task.faithful_example(problem, random.Random(index))
        assert task.reward(context + target, problem.answer) == 0.0
    # a wrong line reduced modulo 100 is still wrong at its own step
    assert task.first_error_step(problems[0], task.solution(problems[0]).replace("=", "=1", 1)) == 1


def test_modulus_off_leaves_the_problems_as_they_were():
    """``modulus: None`` draws exactly today's problems (the committed base was trained on them)."""
    assert ArithmeticTask(ArithmeticConfig(modulus=None)).problems("train", 0, 3)[0] == ArithmeticTask().problems("train", 0, 3)[0]
    assert [p.prompt for p in ArithmeticTask().problems("heldout", 0, 3)] == ["Q:55,+1,+2,+7,-4,-9\n", "Q:47,+8,*1,-5,-6,+3\n", "Q:69,-3,-6,-9,+8\n"]
