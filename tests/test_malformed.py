"""The malformed-input corpus: every case is refused by the CLI with exit code 2, one line naming the
file and the row or field, and nothing written anywhere in the workspace.

Each row of ``CASES`` is ``(name, kind, bad input, expected fragment)``:

- ``params``: the text of ``params.yaml`` (bytes for non-UTF-8), run through ``rlint mine --round 1``;
- ``dataset``: a ``task.name: dataset`` file (name and content), run through ``rlint rollout --round 1``;
- ``checkpoint``: a change to the base model directory ``checkpoints/round=0``, run through ``rlint rollout --round 1``;
- ``upstream``: a change to round 1's ``rollouts`` Parquet file, run through ``rlint mine --round 1``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlint.cli import main
from rlint.data import dataset_path, to_table, write_rows
from tests.conftest import REPO

PARAMS = (REPO / "params.yaml").read_text()
DATASET_TASK = "task:\n  name: dataset\n  path: {path}\n  id_field: id\n"


def _replace(section: str, body: str) -> str:
    """params.yaml with one top-level section replaced."""
    lines, out, skipping = PARAMS.split("\n"), [], False
    for line in lines:
        if line.startswith(f"{section}:"):
            out.append(body.rstrip("\n"))
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def _jsonl(*rows) -> bytes:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows).encode()


def _parquet(columns: dict) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue().to_pybytes()


GOOD = {"id": "a", "question": "1+1?", "answer": "2"}

CASES = [
    # -- params.yaml -----------------------------------------------------------------------------
    ("params-unknown-top-key", "params", PARAMS + "learning_rate: 0.1\n", "unknown key(s) learning_rate"),
    ("params-unknown-nested-key", "params", _replace("rollout", "rollout:\n  prompts_per_round: 4\n  samples_per_promt: 4\n"), "rollout: unknown key(s) samples_per_promt"),
    ("params-wrong-type", "params", _replace("optimize", "optimize:\n  lr: fast\n"), "optimize.lr: expected float"),
    ("params-bool-for-int", "params", _replace("rollout", "rollout:\n  prompts_per_round: true\n"), "rollout.prompts_per_round: expected int"),
    ("params-bad-yaml", "params", "seed: [0\nmode: outcome\n", "not valid YAML"),
    ("params-not-a-mapping", "params", "- seed\n- mode\n", "top level must be a mapping"),
    ("params-non-utf8", "params", b"seed: 0\nmode: \xff\xfe\n", "not valid YAML"),
    ("params-nan-float", "params", _replace("optimize", "optimize:\n  lr: .nan\n"), "optimize.lr: expected a finite number"),
    ("params-negative-count", "params", _replace("rollout", "rollout:\n  prompts_per_round: -4\n"), "rollout.prompts_per_round must be >= 1"),
    ("params-negative-eval-problems", "params", _replace("evaluate", "evaluate:\n  problems: -1\n"), "evaluate.problems must be >= 1"),
    ("params-zero-max-new-tokens", "params", _replace("sampling", "sampling:\n  max_new_tokens: 0\n"), "sampling.max_new_tokens"),
    ("params-negative-max-failures", "params", _replace("mine", "mine:\n  max_failures: -3\n"), "mine.max_failures must be >= 0"),
    ("params-section-not-mapping", "params", _replace("mine", "mine: 8\n"), "mine: expected a mapping"),
    ("params-unknown-mode", "params", _replace("mode", "mode: fancy\n"), "mode='fancy'"),
    ("params-rounds-gap", "params", _replace("rounds", "rounds:\n  r1: {id: 1, prev: 0}\n  r3: {id: 3, prev: 2}\n"), "rounds: ids must be 1, 2, ... without gaps"),
    ("params-rounds-string-id", "params", _replace("rounds", "rounds:\n  r1: {id: one, prev: 0}\n"), "rounds.r1: 'id' and 'prev' must be integers"),
    # -- datasets (task.name: dataset) -----------------------------------------------------------
    ("dataset-missing-field", "dataset", ("d.jsonl", _jsonl(GOOD, {"id": "b", "answer": "3"})), "line 2: field 'question' missing"),
    ("dataset-missing-column", "dataset", ("d.parquet", _parquet({"id": ["a"], "answer": ["2"]})), "field 'question' not found"),
    ("dataset-wrong-type-question", "dataset", ("d.jsonl", _jsonl({**GOOD, "question": 12})), "line 1: field 'question' must be a non-empty string"),
    ("dataset-wrong-type-answer", "dataset", ("d.jsonl", _jsonl({**GOOD, "answer": [2]})), "line 1: field 'answer' must be a string or a number"),
    ("dataset-nan-answer", "dataset", ("d.jsonl", _jsonl("{\"id\": \"a\", \"question\": \"q\", \"answer\": NaN}")), "line 1: field 'answer' is not a finite number"),
    ("dataset-null-answer-parquet", "dataset", ("d.parquet", _parquet({"id": ["a"], "question": ["q"], "answer": pa.array([None], pa.string())})), "row 1: field 'answer'"),
    ("dataset-empty-question", "dataset", ("d.jsonl", _jsonl({**GOOD, "question": "  "})), "line 1: field 'question' must be a non-empty string"),
    ("dataset-empty-id", "dataset", ("d.jsonl", _jsonl({**GOOD, "id": ""})), "line 1: field 'id' must be a non-empty string"),
    ("dataset-duplicate-id", "dataset", ("d.jsonl", _jsonl(GOOD, {**GOOD, "question": "2+2?"})), "line 2: duplicate id 'a' (first at line 1)"),
    ("dataset-duplicate-id-parquet", "dataset", ("d.parquet", _parquet({"id": [1, 1], "question": ["q", "r"], "answer": ["1", "2"]})), "row 2: duplicate id '1'"),
    ("dataset-non-utf8", "dataset", ("d.jsonl", _jsonl(GOOD) + b'{"id": "b", "question": "\xff", "answer": "1"}\n'), "line 2: not valid UTF-8"),
    ("dataset-invalid-json", "dataset", ("d.jsonl", _jsonl(GOOD, "{\"id\": \"b\", question}")), "line 2: invalid JSON"),
    ("dataset-line-not-object", "dataset", ("d.jsonl", _jsonl("[1, 2, 3]")), "line 1: expected a JSON object"),
    ("dataset-empty-file", "dataset", ("d.jsonl", b""), "no problems (empty file)"),
    ("dataset-not-parquet", "dataset", ("d.parquet", b"PAR1 this is not parquet"), "not a readable Parquet file"),
    ("dataset-unknown-extension", "dataset", ("d.csv", b"id,question,answer\na,q,1\n"), "unknown extension '.csv'"),
    ("dataset-missing-file", "dataset", ("d.jsonl", None), "file not found"),
    # -- model directories (checkpoints/round=0) --------------------------------------------------
    ("checkpoint-missing", "checkpoint", "rmtree", "checkpoints/round=0: model directory not found"),
    ("checkpoint-pickle-only", "checkpoint", "pickle-only", "no *.safetensors weights (pickled weights are not loaded)"),
    ("checkpoint-no-tokenizer", "checkpoint", "no-tokenizer", "no tokenizer.json or tokenizer_config.json"),
    ("checkpoint-no-config", "checkpoint", "no-config", "no config.json"),
    ("checkpoint-config-not-json", "checkpoint", "config-garbage", "config.json: not valid JSON"),
    ("checkpoint-config-no-model-type", "checkpoint", "config-no-model-type", "config.json: no 'model_type'"),
    ("checkpoint-unknown-architecture", "checkpoint", "config-unknown-model-type", "config.json:"),
    ("checkpoint-truncated-safetensors", "checkpoint", "truncated", "model.safetensors: tensors need"),
    ("checkpoint-safetensors-garbage", "checkpoint", "garbage", "model.safetensors: not a safetensors file"),
    ("checkpoint-tokenizer-not-json", "checkpoint", "tokenizer-garbage", "tokenizer.json: not valid JSON"),
    # -- upstream stage output (data/rollouts/round=1) -------------------------------------------
    ("upstream-missing-column", "upstream", ("drop", "reward"), "missing columns ['reward']"),
    ("upstream-wrong-type", "upstream", ("cast", "reward", pa.string()), "field reward is string, expected float"),
    ("upstream-nan-reward", "upstream", ("set", 2, "reward", float("nan")), "row 3: field 'reward' is not a finite number"),
    ("upstream-reward-out-of-range", "upstream", ("set", 1, "reward", 0.5), "row 2: field 'reward' is 0.5"),
    ("upstream-empty-id", "upstream", ("set", 2, "rollout_id", ""), "row 1: field 'rollout_id' is empty"),
    ("upstream-duplicate-id", "upstream", ("set", 3, "rollout_id", "r1-train-000000-s0"), "row 2: field 'rollout_id' repeats id"),
    ("upstream-negative-count", "upstream", ("set", 0, "sample_index", -1), "row 1: field 'sample_index' is negative"),
    ("upstream-negative-token-id", "upstream", ("set", 0, "token_ids", [5, -1, 6]), "row 1: field 'token_ids' is negative"),
    ("upstream-infinite-logprob", "upstream", ("set", 0, "logprobs", [-0.5, float("-inf"), -1.0]), "row 1: field 'logprobs' is not a finite number"),
    ("upstream-misaligned-logprobs", "upstream", ("set", 2, "logprobs", [-0.5]), "row 3: field 'logprobs' has 1 entries for 3"),
    ("upstream-bad-step-ends", "upstream", ("set", 2, "step_ends", [2, 9]), "row 3: field 'step_ends' must increase"),
    ("upstream-wrong-round", "upstream", ("set", 0, "round", 2), "row 1: field 'round' is 2, but the file is round 1"),
    ("upstream-not-parquet", "upstream", ("bytes", b"not parquet at all"), "not a readable Parquet file"),
    ("upstream-empty-file", "upstream", ("bytes", b""), "not a readable Parquet file"),
    ("upstream-truncated", "upstream", ("truncate",), "not a readable Parquet file"),
]


def _rollout(i: int) -> dict:
    return {
        "rollout_id": f"r1-train-{i:06d}-s0", "round": 1, "policy_version": 0, "problem_id": f"train-{i:06d}",
        "sample_index": 0, "prompt": "Q:1,+2\n", "answer": "3", "prompt_token_ids": [5, 6], "token_ids": [7, 8, 9],
        "logprobs": [-0.5, -0.25, -1.0], "step_ends": [2, 3], "completion": "1+2=3\nA:3\n", "finish_reason": "stop",
        "reward": 0.0, "true_first_error_step": 1, "archive_id": None, "archived_prefix_token_count": 0,
    }


def _break_checkpoint(model: Path, how: str) -> None:
    if how == "rmtree":
        shutil.rmtree(model)
    elif how == "pickle-only":
        import torch

        (model / "model.safetensors").unlink()
        torch.save({"weight": torch.zeros(2)}, model / "pytorch_model.bin")
    elif how == "no-tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (model / name).unlink()
    elif how == "no-config":
        (model / "config.json").unlink()
    elif how == "config-garbage":
        (model / "config.json").write_text("{model_type: llama")
    elif how.startswith("config-"):
        config = json.loads((model / "config.json").read_text())
        config.pop("model_type") if how == "config-no-model-type" else config.update(model_type="no-such-architecture")
        (model / "config.json").write_text(json.dumps(config))
    elif how == "truncated":
        data = (model / "model.safetensors").read_bytes()
        (model / "model.safetensors").write_bytes(data[: len(data) - 1000])
    elif how == "garbage":
        (model / "model.safetensors").write_bytes(b"\xff" * 64)
    elif how == "tokenizer-garbage":
        (model / "tokenizer.json").write_bytes(b"\x00\x01 not json")
    else:
        raise AssertionError(how)


def _break_rollouts(ws: Path, change: tuple) -> Path:
    path = dataset_path(ws, "rollouts", 1)
    write_rows(ws, "rollouts", 1, [_rollout(i) for i in range(4)])
    op, *args = change
    if op == "bytes":
        path.write_bytes(args[0])
    elif op == "truncate":
        path.write_bytes(path.read_bytes()[:-200])
    elif op == "drop":
        pq.write_table(pq.read_table(path).drop_columns(args), path)
    elif op == "cast":
        table = pq.read_table(path)
        column, to = args
        pq.write_table(table.set_column(table.schema.get_field_index(column), column, table.column(column).cast(to)), path)
    elif op == "set":
        index, column, value = args
        rows = [_rollout(i) for i in range(4)]
        rows[index][column] = value
        pq.write_table(to_table("rollouts", rows), path)
    return path


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name,kind,bad,fragment", CASES, ids=[case[0] for case in CASES])
def test_malformed_input_is_refused_cleanly(tmp_path, capsys, tiny_checkpoint, name, kind, bad, fragment):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "params.yaml").write_text(PARAMS)
    model = ws / "checkpoints" / "round=0"
    shutil.copytree(tiny_checkpoint, model)
    command, named = ["mine", "--round", "1"], "params.yaml"
    if kind == "params":
        (ws / "params.yaml").write_bytes(bad if isinstance(bad, bytes) else bad.encode())
        write_rows(ws, "rollouts", 1, [_rollout(i) for i in range(4)])
    elif kind == "dataset":
        filename, content = bad
        if content is not None:
            (ws / filename).write_bytes(content)
        (ws / "params.yaml").write_text(_replace("task", DATASET_TASK.format(path=ws / filename)))
        command, named = ["rollout", "--round", "1"], filename
    elif kind == "checkpoint":
        _break_checkpoint(model, bad)
        command, named = ["rollout", "--round", "1"], "checkpoints/round=0"
    else:
        named = str(_break_rollouts(ws, bad).relative_to(ws))
        command = ["mine", "--round", "1"]
    before = _snapshot(ws)
    capsys.readouterr()
    assert main(["--root", str(ws), *command]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith(f"rlint {command[0]}: error: ") and named in err[0] and fragment in err[0], err[0]
    assert _snapshot(ws) == before, "the refused command wrote or changed files"


def test_corpus_has_at_least_30_cases_of_each_kind_together():
    kinds = {kind for _, kind, _, _ in CASES}
    assert kinds == {"params", "dataset", "checkpoint", "upstream"} and len(CASES) >= 30
    assert len({name for name, *_ in CASES}) == len(CASES)
