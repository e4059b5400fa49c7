"""Stages that load no model start light: ``archive`` and ``credit`` (round 1, no info_gain, no repair) import
neither torch nor transformers, so their process does its work about half a second after it starts, not
nine (issue 20; scripts/bench_stage_start.py measures every stage).

The upstream files are real: a tiny round's rollout, mine and correct run in-process first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from rlint.cli import main
from tests.conftest import REPO, make_workspace

HEAVY = ("torch", "transformers", "vllm", "accelerate", "sympy")
PROBE = ("import sys; from rlint.cli import main; code = main(sys.argv[1:]); "
         f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, tiny_checkpoint):
    """A workspace with round 0's archive and round 1's rollouts, failures, continuations and corrections."""
    ws = make_workspace(tmp_path_factory.mktemp("light") / "ws", {"rollout": {"prompts_per_round": 3, "samples_per_prompt": 3},
                                                                   "sampling": {"max_new_tokens": 24}})
    shutil.copytree(tiny_checkpoint, ws / "checkpoints" / "round=0")
    for command in (["archive", "--round", "0"], ["rollout", "--round", "1"], ["mine", "--round", "1"], ["correct", "--round", "1"]):
        assert main(["--root", str(ws), *command]) == 0, command
    return ws


@pytest.mark.parametrize("command", [["archive", "--round", "0"], ["archive", "--round", "1"], ["credit", "--round", "1"]],
                         ids=["archive-0", "archive-1", "credit-1"])
def test_a_stage_that_loads_no_model_imports_no_torch(upstream, command):
    done = subprocess.run([sys.executable, "-c", PROBE, "--root", str(upstream), *command], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert done.stdout.strip() == "0 []", done.stdout + done.stderr[-3000:]
    started = re.findall(r"rlint (\w+) --round (\d+): work starts ([0-9.]+) s after process start", done.stderr)
    assert [(name, int(k)) for name, k, _ in started] == [(command[0], int(command[2]))], done.stderr[-3000:]
    assert 0 < float(started[0][2]) < 30
    out = "archive" if command[0] == "archive" else "train_set"
    assert (upstream / "data" / out / f"round={command[2]}" / "part-0.parquet").is_file()


def test_credit_that_decodes_replays_still_checks_the_architecture(upstream, capsys):
    """From round 2 credit decodes replayed prefixes with the transformers tokenizer: the model directory's
    architecture is checked first, so an unknown one is bad input (exit 2), not a crash."""
    import json

    import yaml

    from rlint.cli import loads_model
    from rlint.config import load_params

    params = load_params(upstream / "params.yaml")
    assert not loads_model("credit", 1, params) and loads_model("credit", 2, params) and not loads_model("archive", 2, params)
    ws = upstream.parent / "replays"
    ws.mkdir()
    listed = yaml.safe_load((upstream / "params.yaml").read_text())
    (ws / "params.yaml").write_text(yaml.safe_dump({**listed, "rounds": {"r1": {"id": 1, "prev": 0}, "r2": {"id": 2, "prev": 1}}}, sort_keys=False))
    model = ws / "checkpoints" / "round=1"
    shutil.copytree(upstream / "checkpoints" / "round=0", model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "no-such-architecture"}))
    capsys.readouterr()
    assert main(["--root", str(ws), "credit", "--round", "2"]) == 2
    err = capsys.readouterr().err
    assert "round=1/config.json:" in err and "no-such-architecture" in err, err
