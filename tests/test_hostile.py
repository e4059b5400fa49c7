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

from rlint.cli import main
from tests.conftest import REPO
from tests.test_malformed import DATASET_TASK, GOOD, PARAMS, _break_rollouts, _jsonl, _replace, _rollout, _snapshot
from rlint.data import write_rows

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7)) + "task:\n  operators: *h\n"
DEEP = "task:\n  operators: " + "[" * 5000 + "]" * 5000 + "\n"


def _dataset(name: str, content: bytes, extra: str = "") -> tuple:
    return ("file", name, content, extra)


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
    ("dvc-missing-section", "dvc", _replace("rollout", ""), "params.yaml", "rollout: missing, but dvc.yaml stage 'rollout' tracks it"),
    ("dvc-missing-rounds", "dvc", _replace("rounds", "").replace("# Chained rounds", "#"), "params.yaml", "rounds: missing, but dvc.yaml stage"),
    # -- the round on the command line -----------------------------------------------------------
    ("round-not-in-params", "command", ["mine", "--round", "3"], "--round 3", "not a round of params.rounds (listed: 1..2)"),
    ("round-archive-99", "command", ["archive", "--round", "99"], "--round 99", "not a round of params.rounds"),
    ("round-negative", "command", ["rollout", "--round", "-1"], "--round -1", "rounds start at 1"),
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
    seconds = refused(ws, capsys, command, culprit, fragment)
    if kind in ("params", "dvc", "command"):
        assert seconds < 1.5, seconds  # checked before torch and transformers load


def test_corpus_size():
    assert len({name for name, *_ in CASES}) == len(CASES) >= 40
