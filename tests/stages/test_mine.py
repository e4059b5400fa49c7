"""The mine stage's choice of which failures to mine."""

from __future__ import annotations

from rlint.mining import FailureSearch
from rlint.stages.mine import select_failures


def _search(fid, problem):
    return FailureSearch(failure_id=fid, problem_key=problem, prompt_ids=(1,), token_ids=(2, 3), step_ends=[1, 2])


def test_failures_per_problem_then_limit_in_rollout_order():
    searches = [_search(f"{p}{i}", p) for p, i in [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("b", 1), ("b", 2), ("c", 0)]]
    ids = lambda chosen: [s.failure_id for s in chosen]  # noqa: E731
    assert ids(select_failures(searches, None, None)) == ["a0", "a1", "b0", "a2", "b1", "b2", "c0"]
    assert ids(select_failures(searches, 2, None)) == ["a0", "a1", "b0", "b1", "c0"]
    assert ids(select_failures(searches, 1, 2)) == ["a0", "b0"]
    assert ids(select_failures(searches, 0, None)) == []
    assert ids(select_failures(searches, None, 3)) == ["a0", "a1", "b0"]
