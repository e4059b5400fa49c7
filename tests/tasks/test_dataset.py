"""DatasetTask: loading Parquet/JSONL, splits, validation errors, and the math-verify reward."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlint.tasks.base import Problem, TaskInputError
from rlint.tasks.dataset import DatasetTask, math_answer_reward

FIXTURES = Path(__file__).parent.parent / "fixtures"
JSONL = FIXTURES / "math_problems.jsonl"
PARQUET = FIXTURES / "math_problems.parquet"
N_PROBLEMS = 12


def all_problems(task: DatasetTask, split: str) -> list[Problem]:
    return task.problems(split, 0, task.split_size(split))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


GOOD_ROW = {"id": "a", "question": "1+1?", "answer": "2"}


# -- loading --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [JSONL, PARQUET], ids=["jsonl", "parquet"])
def test_fixture_loads(path):
    task = DatasetTask(path, id_field="id")
    problems = all_problems(task, "train") + all_problems(task, "heldout")
    assert len(problems) == N_PROBLEMS
    by_id = {p.problem_id: p for p in problems}
    assert by_id["p01"] == Problem("p01", "What is 7 + 5?\n", "12")
    assert by_id["p03"].answer == "0.5"  # a float in the JSONL file
    assert by_id["p04"].answer == "1234"  # GSM8K "#### 1,234"
    assert by_id["p05"].answer == "\\frac{1}{2}"
    assert by_id["p08"].answer == "72"
    assert task.name == "dataset" and task.step_delimiter == "\n" and not task.has_step_checker


def test_both_formats_give_identical_problems():
    for split in ("train", "heldout"):
        assert all_problems(DatasetTask(JSONL, id_field="id"), split) == all_problems(DatasetTask(PARQUET, id_field="id"), split)


def test_prompt_template_and_default_ids():
    task = DatasetTask(JSONL, prompt_template="Q: {question}\nA:", heldout_share=0.0)
    first = task.problems("train", 0, 1)[0]
    assert first == Problem("0", "Q: What is 7 + 5?\nA:", "12")


def test_reference_answers_are_scored_right_by_their_own_reward():
    task = DatasetTask(JSONL, id_field="id", heldout_share=0.0)
    for problem in all_problems(task, "train"):
        assert task.reward(f"The answer is \\boxed{{{problem.answer}}}", problem.answer) == 1.0, problem


# -- splits -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_splits_are_disjoint_cover_everything_and_keep_file_order(seed):
    task = DatasetTask(JSONL, id_field="id", heldout_share=0.5, seed=seed)
    train, heldout = ([p.problem_id for p in all_problems(task, s)] for s in ("train", "heldout"))
    assert not set(train) & set(heldout)
    assert sorted(train + heldout) == [f"p{i:02d}" for i in range(1, N_PROBLEMS + 1)]
    assert train == sorted(train) and heldout == sorted(heldout)  # fixture ids are in file order


def test_splits_are_deterministic_and_depend_on_seed():
    def heldout(seed):
        return [p.problem_id for p in all_problems(DatasetTask(JSONL, id_field="id", heldout_share=0.5, seed=seed), "heldout")]

    assert heldout(0) == heldout(0)
    assert len({tuple(heldout(seed)) for seed in range(5)}) > 1


def test_split_depends_on_id_not_row_position(tmp_path):
    rows = [json.loads(line) for line in JSONL.read_text(encoding="utf-8").splitlines()]
    shuffled = write_jsonl(tmp_path / "shuffled.jsonl", rows[::-1])
    original = {p.problem_id for p in all_problems(DatasetTask(JSONL, id_field="id", heldout_share=0.5), "heldout")}
    reordered = {p.problem_id for p in all_problems(DatasetTask(shuffled, id_field="id", heldout_share=0.5), "heldout")}
    assert original == reordered


def test_problems_window_and_wrap_around():
    task = DatasetTask(JSONL, id_field="id", heldout_share=0.0)
    everything = all_problems(task, "train")
    assert task.problems("train", 3, 4) == everything[3:7]
    assert task.problems("train", 10, 5) == everything[10:] + everything[:3]  # wraps cyclically
    assert task.problems("train", 0, 0) == []
    assert task.problems("train", 2, 3) == task.problems("train", 2, 3)


def test_empty_split_and_bad_arguments_raise():
    task = DatasetTask(JSONL, id_field="id", heldout_share=0.0)
    with pytest.raises(TaskInputError, match="split 'heldout' is empty"):
        task.problems("heldout", 0, 1)
    with pytest.raises(TaskInputError, match="split="):
        task.problems("test", 0, 1)
    with pytest.raises(TaskInputError, match="start="):
        task.problems("train", -1, 1)
    with pytest.raises(TaskInputError, match="heldout_share"):
        DatasetTask(JSONL, heldout_share=1.5)
    with pytest.raises(TaskInputError, match="prompt_template"):
        DatasetTask(JSONL, prompt_template="{problem}")


def test_no_step_checker():
    task = DatasetTask(JSONL, id_field="id")
    with pytest.raises(TaskInputError, match="no ground-truth step checker"):
        task.first_error_step(Problem("p01", "x", "1"), "1")


# -- validation errors: each names the file and the row (1-based line) or field ---------------------
def test_missing_file(tmp_path):
    with pytest.raises(TaskInputError, match=r"nope\.jsonl: file not found"):
        DatasetTask(tmp_path / "nope.jsonl")


def test_unknown_extension(tmp_path):
    path = tmp_path / "problems.csv"
    path.write_text("question,answer\n1+1?,2\n")
    with pytest.raises(TaskInputError, match=r"problems\.csv: unknown extension '\.csv'"):
        DatasetTask(path)


def test_non_utf8_jsonl(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD_ROW).encode() + b"\n" + '{"question": "caf\xe9?", "answer": "1"}\n'.encode("latin-1"))
    with pytest.raises(TaskInputError, match=r"latin1\.jsonl: line 2: not valid UTF-8"):
        DatasetTask(path)


def test_invalid_json_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(GOOD_ROW) + "\n\n" + '{"question": "2+2?", "answer": 4\n', encoding="utf-8")
    with pytest.raises(TaskInputError, match=r"broken\.jsonl: line 3: invalid JSON"):  # blank line 2 is skipped
        DatasetTask(path)


def test_json_line_not_an_object(tmp_path):
    path = write_jsonl(tmp_path / "list.jsonl", [GOOD_ROW, [1, 2]])
    with pytest.raises(TaskInputError, match=r"list\.jsonl: line 2: expected a JSON object"):
        DatasetTask(path)


@pytest.mark.parametrize("field", ["question", "answer", "id"])
def test_missing_field_jsonl(tmp_path, field):
    row = {k: v for k, v in GOOD_ROW.items() if k != field}
    path = write_jsonl(tmp_path / "missing.jsonl", [{**GOOD_ROW, "id": "b"}, row])
    with pytest.raises(TaskInputError, match=rf"missing\.jsonl: line 2: field '{field}' missing"):
        DatasetTask(path, id_field="id")


@pytest.mark.parametrize("field", ["question", "answer", "id"])
def test_missing_column_parquet(tmp_path, field):
    path = tmp_path / "missing.parquet"
    pq.write_table(pa.table({k: [v] for k, v in GOOD_ROW.items() if k != field}), path)
    with pytest.raises(TaskInputError, match=rf"missing\.parquet: field '{field}' not found"):
        DatasetTask(path, id_field="id")


def test_custom_field_names(tmp_path):
    path = write_jsonl(tmp_path / "custom.jsonl", [{"uid": 7, "problem": "1+1?", "solution": "#### 2"}])
    task = DatasetTask(path, question_field="problem", answer_field="solution", id_field="uid", heldout_share=0.0)
    assert task.problems("train", 0, 1) == [Problem("7", "1+1?\n", "2")]
    with pytest.raises(TaskInputError, match=r"custom\.jsonl: line 1: field 'question' missing"):
        DatasetTask(path)


@pytest.mark.parametrize("question", [None, "", "   ", 42, ["a"]])
def test_bad_question(tmp_path, question):
    path = write_jsonl(tmp_path / "q.jsonl", [GOOD_ROW, {"question": question, "answer": "1"}])
    with pytest.raises(TaskInputError, match=r"q\.jsonl: line 2: field 'question' must be a non-empty string"):
        DatasetTask(path)


@pytest.mark.parametrize("answer", [None, "", "  ", "#### ", True, {"x": 1}])
def test_bad_answer(tmp_path, answer):
    path = write_jsonl(tmp_path / "a.jsonl", [GOOD_ROW, {"question": "2+2?", "answer": answer}])
    with pytest.raises(TaskInputError, match=r"a\.jsonl: line 2: field 'answer'"):
        DatasetTask(path)


def test_null_answer_parquet(tmp_path):
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"question": ["1+1?", "2+2?"], "answer": ["2", None]}), path)
    with pytest.raises(TaskInputError, match=r"nulls\.parquet: row 2: field 'answer'"):
        DatasetTask(path)


def test_numeric_answers_become_text(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"question": "a", "answer": 3}, {"question": "b", "answer": 0.25}])
    task = DatasetTask(path, heldout_share=0.0)
    assert [p.answer for p in task.problems("train", 0, 2)] == ["3", "0.25"]


def test_duplicate_ids(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [GOOD_ROW, {**GOOD_ROW, "id": "b"}, GOOD_ROW])
    with pytest.raises(TaskInputError, match=r"dup\.jsonl: line 3: duplicate id 'a' \(first at line 1\)"):
        DatasetTask(path, id_field="id")


def test_duplicate_ids_parquet(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"id": [1, 2, 1], "question": ["q"] * 3, "answer": ["1"] * 3}), path)
    with pytest.raises(TaskInputError, match=r"dup\.parquet: row 3: duplicate id '1' \(first at row 1\)"):
        DatasetTask(path, id_field="id")


def test_empty_files(tmp_path):
    blank = tmp_path / "empty.jsonl"
    blank.write_text("\n \n", encoding="utf-8")
    with pytest.raises(TaskInputError, match=r"empty\.jsonl: no problems"):
        DatasetTask(blank)
    no_rows = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"question": pa.array([], pa.string()), "answer": pa.array([], pa.string())}), no_rows)
    with pytest.raises(TaskInputError, match=r"empty\.parquet: no problems"):
        DatasetTask(no_rows)


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(TaskInputError, match=r"junk\.parquet: not a readable Parquet file"):
        DatasetTask(path)


def test_error_messages_are_one_line(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": ["line one\nline two"], "answer": "1"}])
    with pytest.raises(TaskInputError) as info:
        DatasetTask(path)
    assert "\n" not in str(info.value)


# -- reward ---------------------------------------------------------------------------------------
REWARD_CASES = [
    # integers, and where the answer is found
    ("So the total is 12.", "12", 1.0),
    ("7 + 5 = 12\nA: 12", "12", 1.0),
    ("7 + 5 = 13\nA: 13", "12", 0.0),
    ("The answer is 12 apples.", "12", 1.0),
    ("Answer: 12", "12", 1.0),
    ("-4 - 4 = -8\n#### -8", "-8", 1.0),
    ("I think 11, no wait, 12", "12", 1.0),  # last number
    # boxed beats ####, which beats the answer line, which beats the last number
    ("#### 3\nso \\boxed{4} and 5", "4", 1.0),
    ("The answer is 3.\n#### 4\nchecked 5 times", "4", 1.0),
    ("A: 7\nI double-checked it 3 times", "7", 1.0),
    # decimals and fractions
    ("#### 2.75", "2.75", 1.0),
    ("#### 2.750", "2.75", 1.0),
    ("#### 2.8", "2.75", 0.0),
    ("Each friend gets 3/4 of a pizza.", "0.75", 1.0),
    ("The answer is 0.75", "3/4", 1.0),
    ("\\boxed{\\frac{3}{4}}", "3/4", 1.0),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", 1.0),
    ("So the answer is $\\frac{1}{2}$.", "\\frac{1}{2}", 1.0),
    ("\\boxed{0.5}", "\\frac{1}{2}", 1.0),
    ("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", 0.0),
    # simple expressions and LaTeX
    ("A: 2+3", "5", 1.0),
    ("\\boxed{3 \\cdot 4}", "12", 1.0),
    ("\\boxed{2\\sqrt{2}}", "2\\sqrt{2}", 1.0),
    ("\\boxed{\\sqrt{8}}", "2\\sqrt{2}", 1.0),
    ("\\boxed{5!}", "120", 1.0),
    ("\\boxed{(x+1)^2}", "x^2+2x+1", 1.0),
    ("A: 2x+2", "2(x+1)", 1.0),
    ("\\boxed{18 \\text{ dollars}}", "18", 1.0),
    ("\\boxed{\\$18}", "18", 1.0),
    ("The answer is 50%", "50", 1.0),
    # GSM8K-style and thousands separators, on either side
    ("They sold 1000 + 234 = 1234 pens.\n#### 1,234", "1234", 1.0),
    ("#### 1234", "It sold <<1000+234=1234>>1,234 pens.\n#### 1,234", 1.0),
    ("There are 1,000,000 meters.", "1000000", 1.0),
    ("#### 1,235", "#### 1,234", 0.0),
    # costly answers are refused, not evaluated: unscorable (rlint/tasks/bounded.py)
    ("\\boxed{9^{9^{9}}}", "42", None),
    ("#### 9**9**9", "42", 0.0),  # not LaTeX: read as the text "9**9**9", which is not 42
    ("\\boxed{(10^{1000})^{1000}}", "1", None),
    ("\\boxed{\\binom{100000000}{50000000}}", "1", None),
    ("\\boxed{100000000!}", "1", None),
    ("\\boxed{(x+y+z+1)^{30}}", "1", None),  # simplify would expand it for seconds
    ("\\boxed{(a+b+c+d+e+f+g+h+1)^{10}(a+b+c+d+e+f+g+h+i+1)^{10}}", "1", None),  # each power alone passes; the product does not
    ("\\boxed{(1000!)^{5}(999!)^{5}}", "1", None),
    # above the cheap limits, below the hard ones: compared in the worker process
    ("\\boxed{(x+y+1)^{10}}", "(1+x+y)^{10}", 1.0),
    ("\\boxed{2^{3000}}", "2^{3000}+1", 0.0),
    # nothing to score
    ("", "12", None),
    ("I do not know.", "12", None),
    ("A: no idea", "12", None),
    ("\\boxed{}", "12", None),
    ("12", "", None),
    ("12", "not a number", None),
]


@pytest.mark.parametrize(("completion", "reference", "expected"), REWARD_CASES)
def test_reward_table(completion, reference, expected):
    assert math_answer_reward(completion, reference) == expected


def test_task_reward_uses_math_answer_reward():
    task = DatasetTask(JSONL, id_field="id")
    assert task.reward("#### 1,234", "1234") == 1.0
    assert task.reward("nothing here", "1234") is None


def test_only_the_tail_of_a_long_completion_is_read():
    assert math_answer_reward("\\boxed{7} " + "blah " * 1_000 + "so 8", "7") == 0.0


def test_reward_off_the_main_thread_matches_the_main_thread():
    """math-verify's signal timeouts raise ValueError off the main thread; the reward must not."""
    main = [math_answer_reward(c, r) for c, r, _ in REWARD_CASES]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda case: math_answer_reward(case[0], case[1]), REWARD_CASES))
    assert threaded == main


# Random text made of the pieces the extractor and math-verify react to.
MATH_TOKENS = list("0123456789+-*/^!.,%$#{}() \nAx:") + ["\\boxed{", "\\frac", "\\sqrt", "####", "answer is ", "\\binom", "10^{", "\\cdot"]
MATHY = st.lists(st.sampled_from(MATH_TOKENS), max_size=60).map("".join)


@settings(max_examples=150, deadline=timedelta(seconds=5))
@given(completion=st.one_of(st.text(max_size=300), MATHY), reference=st.sampled_from(["42", "3/4", "\\frac{1}{2}", "1234", "2.75"]))
def test_random_completions_never_raise(completion, reference):
    started = time.monotonic()
    assert math_answer_reward(completion, reference) in (0.0, 1.0, None)
    assert time.monotonic() - started < 5


# -- a separate held-out file (task.heldout_path) ---------------------------------------------------
def test_heldout_file_is_the_heldout_split(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [{"question": f"{i}+1?", "answer": str(i + 1)} for i in range(5)])
    test = write_jsonl(tmp_path / "test.jsonl", [{"question": f"{i}*2?", "answer": str(2 * i)} for i in range(3)])
    task = DatasetTask(train, heldout_path=test, heldout_share=0.9)
    assert [p.prompt for p in all_problems(task, "train")] == [f"{i}+1?\n" for i in range(5)]  # every train row, whatever the share
    assert [(p.problem_id, p.answer) for p in all_problems(task, "heldout")] == [("heldout/0", "0"), ("heldout/1", "2"), ("heldout/2", "4")]


def test_heldout_file_with_other_columns_or_shared_ids_is_refused(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD_ROW])
    other = write_jsonl(tmp_path / "other.jsonl", [{**GOOD_ROW, "id": "b", "solution": "1+1=2"}])
    with pytest.raises(TaskInputError, match=r"other.jsonl: task.heldout_path: columns answer, id, question, solution differ from .*train.jsonl"):
        DatasetTask(train, heldout_path=other)
    same = write_jsonl(tmp_path / "same.jsonl", [GOOD_ROW])
    with pytest.raises(TaskInputError, match=r"same.jsonl: task.heldout_path: id 'a' is also in .*train.jsonl"):
        DatasetTask(train, id_field="id", heldout_path=same)
    with pytest.raises(TaskInputError, match=r"missing.jsonl: file not found"):
        DatasetTask(train, heldout_path=tmp_path / "missing.jsonl")
    parquet = tmp_path / "test.parquet"
    pq.write_table(pa.table({"question": ["q"], "answer": ["1"]}), parquet)
    with pytest.raises(TaskInputError, match="columns answer, question differ"):
        DatasetTask(PARQUET, heldout_path=parquet)
