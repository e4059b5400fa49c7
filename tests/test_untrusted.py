"""Untrusted input: pickles are never loaded, and hypothesis-fuzzed loaders and verifiers fail only with their own errors."""

from __future__ import annotations

import json
import re
import shutil
import time
import traceback
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlint.checkpoints import verify_checkpoint
from rlint.config import ConfigError, load_params
from rlint.data import DataError, dataset_path, read_rows, write_rows
from rlint.policy import CheckpointError, load_policy
from rlint.tasks.arithmetic import ArithmeticTask
from rlint.tasks.base import TaskInputError
from rlint.tasks.dataset import DatasetTask


class _Payload:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (shutil.os.mkdir, (self.marker,))


def _write_pickle(path, marker):
    import pickle

    path.write_bytes(pickle.dumps({"model.embed_tokens.weight": _Payload(marker)}))


def test_pickled_weights_are_never_loaded(tmp_path, tiny_checkpoint):
    marker = tmp_path / "pickle-was-loaded"
    both = tmp_path / "both"
    shutil.copytree(tiny_checkpoint, both)
    _write_pickle(both / "pytorch_model.bin", marker)
    model, _ = load_policy(both)  # safetensors next to a pickle: the safetensors are loaded
    assert sum(p.numel() for p in model.parameters()) > 0 and not marker.exists()

    decoy = tmp_path / "decoy"  # the only real weights are pickled; a stray *.safetensors passes the file check
    shutil.copytree(tiny_checkpoint, decoy)
    (decoy / "model.safetensors").rename(decoy / "other.safetensors")
    _write_pickle(decoy / "pytorch_model.bin", marker)
    with pytest.raises(Exception):
        load_policy(decoy)
    assert not marker.exists()

    only = tmp_path / "only"
    shutil.copytree(tiny_checkpoint, only)
    (only / "model.safetensors").unlink()
    _write_pickle(only / "pytorch_model.bin", marker)
    with pytest.raises(CheckpointError, match="pickled weights are not loaded"):
        verify_checkpoint(only)
    assert not marker.exists()


FUZZ = settings(max_examples=60, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.lists(st.sampled_from(["seed: ", "rounds:\n", "  r1: {id: 1, prev: 0}\n", "mode: outcome\n",
                                                                      "rollout:\n", "  prompts_per_round: ", "-1", "1e9", ".nan", "[", "{", "\n", "x: y\n"]),
                                                      max_size=12).map("".join)))
def test_params_loader_fuzz(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    try:
        load_params(path)
    except ConfigError as err:
        assert str(path) in str(err) and "\n" not in str(err)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".parquet"]))
def test_dataset_loader_fuzz(tmp_path, data, suffix):
    path = tmp_path / f"d{suffix}"
    path.write_bytes(data)
    try:
        DatasetTask(path)
    except TaskInputError as err:
        assert str(path) in str(err) and "\n" not in str(err)


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(max_size=5), st.integers(), st.none(), st.booleans()),
    "question": st.one_of(st.text(max_size=20), st.integers(), st.none(), st.floats()),
    "answer": st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=True), st.none(), st.lists(st.integers(), max_size=2)),
}), max_size=6))
def test_dataset_rows_fuzz(tmp_path, rows):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    try:
        task = DatasetTask(path, id_field="id")
    except TaskInputError as err:
        assert str(path) in str(err) and "\n" not in str(err)
    else:
        assert task.split_size("train") + task.split_size("heldout") == len(rows)


def _valid_rollouts_file(root) -> bytes:
    from tests.test_malformed import _rollout

    write_rows(root, "rollouts", 1, [_rollout(i) for i in range(3)])
    return dataset_path(root, "rollouts", 1).read_bytes()


@FUZZ
@given(position=st.integers(min_value=0, max_value=10**6), value=st.integers(min_value=0, max_value=255), cut=st.booleans())
def test_stage_parquet_reader_fuzz(tmp_path, position, value, cut):
    """A stage's Parquet input with one byte changed, or cut short: read correctly or refused with a DataError."""
    data = bytearray(_valid_rollouts_file(tmp_path))
    position %= len(data)
    if cut:
        data = data[:position]
    else:
        data[position] = value
    dataset_path(tmp_path, "rollouts", 1).write_bytes(bytes(data))
    try:
        rows = read_rows(tmp_path, "rollouts", 1)
    except DataError as err:
        assert "part-0.parquet" in str(err)
    else:
        assert len({r["rollout_id"] for r in rows}) == len(rows)


@FUZZ
@given(position=st.integers(min_value=0, max_value=10**6), value=st.integers(min_value=0, max_value=255), cut=st.booleans())
def test_checkpoint_verifier_fuzz(tmp_path_factory, tiny_checkpoint, position, value, cut):
    """A model directory whose safetensors file has one byte changed or is cut short: accepted only if well formed."""
    model = tmp_path_factory.mktemp("m") / "model"
    shutil.copytree(tiny_checkpoint, model)
    data = bytearray((model / "model.safetensors").read_bytes())
    position %= len(data)
    if cut:
        data = data[:position]
    else:
        data[position] = value
    (model / "model.safetensors").write_bytes(bytes(data))
    try:
        verify_checkpoint(model)
    except CheckpointError as err:
        assert "model.safetensors" in str(err)
    else:
        from safetensors.torch import load_file

        load_file(model / "model.safetensors")  # what passed the header check loads


ARITH_TOKENS = ["A:", "1", "9", "0", "-", "\n", "=", "+", "*", "99999999999999999999", "٣", " ", "x"]


@settings(max_examples=200, deadline=timedelta(seconds=1))
@given(completion=st.one_of(st.text(max_size=500), st.lists(st.sampled_from(ARITH_TOKENS), max_size=80).map("".join)), answer=st.integers(0, 99))
def test_arithmetic_verifier_fuzz(completion, answer):
    started = time.monotonic()
    assert ArithmeticTask().reward(completion, str(answer)) in (0.0, 1.0, None)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("completion", [
    "A:" + "9" * 100_000,  # a huge number: not an answer line (at most 12 digits)
    ("1+1=2\n" * 50_000) + "A:2\n",  # a very long output
    "A:" + "(" * 50_000 + ")" * 50_000,
    "__import__('os').system('touch /tmp/rlint-pwned')\nA:3\n",
])
def test_arithmetic_verifier_bounded(completion):
    started = time.monotonic()
    assert ArithmeticTask().reward(completion, "2") in (0.0, 1.0, None)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("completion", [
    "The answer is \\boxed{" + "9^{" * 200 + "9" + "}" * 200 + "}",  # deeply nested power tower
    "#### " + "(" * 5_000 + "1" + ")" * 5_000,  # deeply nested expression
    "#### " + "9" * 100_000,  # a huge number
    "x" * 2_000_000 + "\n#### 42",  # a very long output
    "#### 99999999999^99999999999^999999999",
    "#### __import__('os').system('touch /tmp/rlint-pwned')",
    "The answer is \\boxed{\\frac{" + "1" * 5000 + "}{3}}",
])
def test_math_verifier_bounded(completion, tmp_path):
    from rlint.tasks.dataset import math_answer_reward

    started = time.monotonic()
    assert math_answer_reward(completion, "42") in (0.0, 1.0, None)
    assert time.monotonic() - started < 1



NUMERAL_CODE = re.compile(r"-?(Integer|Float) \('?[0-9.]+'? \)")  # what sympy.Number("12") evals


def _numeral(code) -> bool:
    """An eval'd string (or compiled code) that only builds one number."""
    if isinstance(code, str):
        return NUMERAL_CODE.fullmatch(code) is not None
    return set(code.co_names) <= {"Integer", "Float"} and all(not hasattr(c, "co_names") for c in code.co_consts)


def test_verifiers_eval_only_numerals(monkeypatch):
    """Model output never reaches Python's eval as an expression.

    math-verify's plain-expression reader hands text like "17*23+1" to sympy.parse_expr, which evals
    it; rlint sends text with an operator to math-verify's LaTeX grammar instead. What remains is
    sympy converting a numeral the grammar matched (``sympy.Number("12")`` goes through eval too).
    """
    import builtins

    from math_verify import parse

    from rlint.tasks.dataset import math_answer_reward
    from tests.tasks.test_dataset import REWARD_CASES

    completions = [c for c, _, _ in REWARD_CASES] + ["A: 19*29+3", "#### (7+8)*9", "The answer is 6/7 - 1", "__import__('os').getcwd()",
                                                     "#### 2**10", "answer: 3 ÷ 4", "#### 5 × 6"]
    calls = []
    real_eval = builtins.eval

    def spy(code, *args, **kwargs):
        # modules imported on first use (sympy's units) eval their own constant strings: not model output
        if not any(frame.filename.startswith("<frozen importlib") for frame in traceback.extract_stack()):
            calls.append(code)
        return real_eval(code, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", spy)
    parse("The result: 17*23+1 is it")  # math-verify alone evals the expression
    assert any(not _numeral(code) for code in calls), calls
    calls.clear()
    for completion in completions:
        assert ArithmeticTask().reward(completion, "12") in (0.0, 1.0, None)
        assert math_answer_reward(completion, "12") in (0.0, 1.0, None)
    assert calls and all(_numeral(code) for code in calls), [c for c in calls if not _numeral(c)]


YAML_PIECES = ["seed: 1\n", "seed: 2\n", "rollout:\n", "  prompts_per_round: 4\n", "  prompts_per_round: 5\n", "a: &x [1, 2]\n", "b: *x\n",
               "<<: {seed: 3}\n", "? [k]\n: v\n", "1: 2\n", "task: !!python/name:os.system\n", "x: " + "[" * 40 + "]" * 40 + "\n",
               "---\n", "mode: " + "m" * 2000 + "\n", "null\n", "- 1\n", "rounds:\n  r1: {id: 1, prev: 0}\n", "limits: {max_rows_per_round: 1}\n"]


@FUZZ
@given(pieces=st.lists(st.sampled_from(YAML_PIECES), max_size=8))
def test_params_yaml_structure_fuzz(tmp_path, pieces):
    """Duplicates, anchors, merge keys, complex and integer keys, tags, deep nesting, several documents, long values:
    loaded, or refused with one ConfigError line under 500 characters naming the file, in well under a second."""
    path = tmp_path / "params.yaml"
    path.write_text("".join(pieces))
    started = time.monotonic()
    try:
        load_params(path)
    except ConfigError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err) and len(str(err)) < 500, str(err)[:300]
    assert time.monotonic() - started < 1
