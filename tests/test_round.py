"""rlint/round.py runs the table's stages in order, each module's ``run(params, round_id, root)``."""

import sys
import types
from pathlib import Path

from rlint.round import run_round, start_archive
from rlint.stage_graph import ROUND_STAGES


def test_run_round_calls_each_stage_in_table_order(monkeypatch):
    calls = []
    for name in ROUND_STAGES:
        fake = types.ModuleType(f"rlint.stages.{name}")
        fake.run = lambda params, round_id, root, name=name: calls.append((name, params, round_id, root)) or {"stage": name}
        monkeypatch.setitem(sys.modules, f"rlint.stages.{name}", fake)
    metrics = run_round("P", 3, Path("ws"))
    assert [c[0] for c in calls] == list(ROUND_STAGES) and all(c[1:] == ("P", 3, Path("ws")) for c in calls)
    assert metrics == {name: {"stage": name} for name in ROUND_STAGES}
    calls.clear()
    assert start_archive("P", Path("ws")) == {"stage": "archive"} and calls == [("archive", "P", 0, Path("ws"))]
