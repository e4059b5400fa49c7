"""The choice of which failures to mine, and the strategies' one interface."""

from __future__ import annotations

import inspect

from rlint.identify import IDENTIFY, select_failures


def _row(rollout_id, problem, reward=0.0):
    return {"rollout_id": rollout_id, "problem_id": problem, "reward": reward}


def test_failures_per_problem_then_limit_in_rollout_order():
    rows = [_row(f"{p}{i}", p) for p, i in [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("b", 1), ("b", 2), ("c", 0)]]
    rows.insert(1, _row("a-right", "a", 1.0))  # successes are never chosen
    ids = lambda chosen: [r["rollout_id"] for r in chosen]  # noqa: E731
    assert ids(select_failures(rows, None, None)) == ["a0", "a1", "b0", "a2", "b1", "b2", "c0"]
    assert ids(select_failures(rows, 2, None)) == ["a0", "a1", "b0", "b1", "c0"]
    assert ids(select_failures(rows, 1, 2)) == ["a0", "b0"]
    assert ids(select_failures(rows, 0, None)) == []
    assert ids(select_failures(rows, None, 3)) == ["a0", "a1", "b0"]


def test_every_strategy_has_the_one_signature():
    assert set(IDENTIFY) == {"search", "repair"}
    for fn in IDENTIFY.values():
        assert list(inspect.signature(fn).parameters) == ["failures", "rollouts", "engine", "task", "params", "seed", "round_id"]
