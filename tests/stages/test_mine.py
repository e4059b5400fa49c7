"""The mine stage's choice of which failures to mine."""

from __future__ import annotations

import pytest

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


def test_no_engine_is_started_when_no_failure_needs_samples(tmp_path, tiny_checkpoint, caplog):
    """An untrained policy solves nothing: every failure is prompt_unsolved and is decided without
    sampling, so the mine stage must not load the policy (here it could not: the checkpoint is gone)."""
    import shutil

    from rlint.config import load_params
    from rlint.engine import LazyEngine
    from rlint.stages import archive, mine, rollout
    from tests.conftest import make_workspace

    root = make_workspace(tmp_path / "ws")
    shutil.copytree(tiny_checkpoint, root / "checkpoints" / "round=0")
    params = load_params(root / "params.yaml")
    archive.run(params, 0, root)
    metrics = rollout.run(params, 1, root)
    assert metrics["train_accuracy"] == 0.0  # nothing solved: every group is all wrong
    shutil.rmtree(root / "checkpoints" / "round=0")
    with caplog.at_level("INFO"):
        mined = mine.run(params, 1, root)
    assert mined["failures"] > 0 and mined["failures_located"] == 0 and mined["mining_tokens"] == 0
    assert any("no engine started" in r.getMessage() for r in caplog.records)
    lazy = LazyEngine(str(tmp_path / "missing"), params.sampling)
    assert not lazy.started
    with pytest.raises(Exception):
        lazy.generate  # noqa: B018 - the first use loads, and this checkpoint does not exist
