"""The mine stage: read -> identify -> write."""

from __future__ import annotations

import pytest


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


def test_oracle_repair_locates_the_true_first_error_without_an_engine(tmp_path, tiny_checkpoint, monkeypatch):
    """mode oracle + mine.strategy repair: failures rows decided by the oracle repair, no sampling; correct and credit
    use them like self-repairs, and the repair's recomputed old log-probs are the policy's (the ratio starts at 1)."""
    import shutil

    import rlint.engine
    from rlint.config import with_changes
    from rlint.data import read_rows, write_rows
    from rlint.stages import correct, credit, mine, optimize
    from tests.identify.test_repair import PROBLEM, RIGHT, TASK, WRONG, ScriptedEngine, params, rollout_row

    root = tmp_path / "ws"
    shutil.copytree(tiny_checkpoint, root / "checkpoints" / "round=0")
    scripted = ScriptedEngine([])
    rows = []
    for i, completion in enumerate([RIGHT, WRONG, "12+7=18\n18*3=54\n54-5=49\nA:49\n"]):
        row = rollout_row(scripted, completion, rollout_id=f"r1-p-s{i}")
        row.update(round=1, policy_version=0, sample_index=i, logprobs=[-1.0] * len(row["token_ids"]), completion=completion,
                   reward=TASK.reward(completion, PROBLEM.answer), archive_id=None)
        rows.append(row)
    write_rows(root, "rollouts", 1, rows)

    def no_engine(*args):
        raise AssertionError("the oracle repair samples nothing: no engine may start")

    monkeypatch.setattr(rlint.engine, "load_engine", no_engine)
    monkeypatch.setattr(correct, "load_engine", no_engine)
    p = with_changes(params(strategy="repair", failures_per_problem=None), mode="oracle",
                     optimize=with_changes(params().optimize, epochs=1, minibatch_size=8))
    metrics = mine.run(p, 1, root)
    assert metrics["failures"] == metrics["failures_located"] == 2 and metrics["localization_accuracy"] == 1.0
    assert metrics["mining_tokens"] == metrics["repair_tokens"] == metrics["continuations"] == 0
    failures = read_rows(root, "failures", 1)
    assert [f["decided_by"] for f in failures] == ["oracle_repair"] * 2
    assert [f["first_error_step"] for f in failures] == [f["true_first_error_step"] for f in failures] == [2, 1]
    assert correct.run(p, 1, root)["correction_samples"] == 0
    assert {b["kind"] for b in read_rows(root, "branches", 1)} == {"repair"}
    assert credit.run(p, 1, root)["repair_examples"] == 2
    train = read_rows(root, "train_set", 1)
    repairs = [r for r in train if r["kind"] == "repair"]
    assert all(r["context_token_ids"] == rows[0]["prompt_token_ids"] and max(r["logprobs"]) < 0 for r in repairs)  # recomputed, not the zeros
    write_rows(root, "train_set", 1, repairs)  # the rollouts' scripted log-probs are not the policy's; the repairs' must be
    assert optimize.run(p, 1, root)["logprob_mismatch_max"] < 1e-4
