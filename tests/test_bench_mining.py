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
