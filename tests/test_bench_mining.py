"""scripts/bench_mining.py refuses bad input with exit code 2 and a one-line message, before writing anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "bench_mining.py"), "--params", str(REPO / "params.yaml"), *args],
                          capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "{tmp}/nothing"], "nothing: model directory not found"),
    (["--continuations", "-1"], "mine.continuations_per_probe must be >= 1"),
    (["--continuations", "0"], "mine.continuations_per_probe must be >= 1"),
    (["--temperature", "0"], "mine.temperature must be > 0"),
    (["--searches", "binary,lin"], "--searches: unknown ['lin']"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = _run(*[a.replace("{tmp}", str(tmp_path)) for a in args], "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_binary_and_repair_on_the_same_failures_write_the_summary(tmp_path):
    import json

    summary = tmp_path / "summary.json"
    result = _run("--prompts", "3", "--samples", "4", "--strategies", "binary,repair", "--out", str(tmp_path / "out"), "--summary", str(summary))
    assert result.returncode == 0, result.stderr[-2000:]
    strategies = json.loads(summary.read_text())["strategies"]
    assert set(strategies) == {"binary", "repair"}
    assert strategies["binary"]["failures"] == strategies["repair"]["failures"]  # the same failures of the same rollouts
    for name, row in strategies.items():
        assert {"failures", "located", "loc_acc", "tokens_per_located"} <= set(row)
        assert row["located"] == sum(n for key, n in row["decided_by"].items() if key in ("probe", "sibling", "repair"))
    assert "repair_success" in strategies["repair"] and "repair_success" not in strategies["binary"]
