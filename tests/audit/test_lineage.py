"""Lineage (rlint/audit/lineage.py): from any id back to its rollout."""

from __future__ import annotations

import json

import polars as pl

from rlint.audit.inputs import Inputs
from rlint.audit.lineage import lineage
from rlint.audit.render import format_lineage
from rlint.audit.sources import workspace_inputs
from tests.audit.run import ROUNDS, rows


def test_lineage_of_a_branch_example_reaches_its_prompt(run_dir):
    branches = [b for k in ROUNDS for b in rows(run_dir, "branches", k)]
    assert branches, "the base policy should give corrected branches"
    branch = branches[0]
    parent = {r["rollout_id"]: r for k in ROUNDS for r in rows(run_dir, "rollouts", k)}[branch["parent_rollout_id"]]
    chain = lineage(workspace_inputs(run_dir), branch["branch_id"])
    assert [link.dataset for link in chain] == ["train_set", "branches", "failures", "rollouts"]
    assert chain[-1].row["prompt"] == parent["prompt"] and chain[-1].row["policy_version"] == parent["policy_version"]
    text = format_lineage(chain)
    assert json.dumps(parent["prompt"]) in text and f"policy_version {parent['policy_version']}" in text
    assert f"round {parent['round']}" in text


def test_lineage_starts_from_any_id(run_dir):
    inputs = workspace_inputs(run_dir)
    failure = rows(run_dir, "failures", 1)[0]
    continuation = rows(run_dir, "continuations", 1)[0]
    archived = {a["failure_id"] for k in ROUNDS for a in rows(run_dir, "archive", k)}
    # the same id names the example, the failure and the rollout; a hard case also its archive entry
    assert [link.dataset for link in lineage(inputs, failure["failure_id"])] == ["train_set", *(["archive"] * (failure["failure_id"] in archived)), "failures", "rollouts"]
    assert [link.dataset for link in lineage(inputs, continuation["continuation_id"])] == ["continuations", *(["archive"] * (continuation["failure_id"] in archived)), "failures", "rollouts"]
    assert lineage(inputs, continuation["continuation_id"])[-1].id == continuation["failure_id"]


def test_lineage_shows_the_archived_prefix_of_a_failure(run_dir):
    failure = next(f for f in rows(run_dir, "failures", 1) if f["first_error_step"] is not None)
    snapshots = pl.DataFrame({
        "archive_id": [failure["failure_id"]] * 2, "round": [1, 2], "origin_round": [1, 1], "failure_id": [failure["failure_id"]] * 2,
        "prefix_steps": [failure["first_error_step"] - 1] * 2, "status": ["open", "solved"], "solved_round": [None, 2], "replays": [0, 1],
    }, schema_overrides={"round": pl.Int32, "origin_round": pl.Int32, "prefix_steps": pl.Int32, "solved_round": pl.Int32, "replays": pl.Int32})
    inputs = workspace_inputs(run_dir)
    inputs = Inputs(frames={**inputs.frames, "archive": snapshots.lazy()}, metrics=inputs.metrics, origin="test")
    chain = lineage(inputs, failure["failure_id"])
    assert [link.dataset for link in chain] == ["train_set", "archive", "failures", "rollouts"]
    assert chain[1].row["round"] == 2 and "solved in round 2, replays 1 (snapshot after round 2)" in format_lineage(chain)
