"""The per-round tables (rlint/audit/summary.py) against a recount of a real run's Parquet and metrics files."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import polars as pl
import pytest

from rlint.audit.inputs import Inputs
from rlint.audit.render import format_summary
from rlint.audit.sources import workspace_inputs
from rlint.audit.summary import archive_stats, audit, failure_stats, metrics_frame
from tests.audit.run import ROUNDS, by_round, rows, stage_metrics


def test_rounds_are_the_base_policy_and_every_run_round(result):
    assert result.rounds["round"].to_list() == [0, *ROUNDS]
    assert by_round(result)[2]["policy_version"] == 1


def test_outcomes_equal_a_recount_of_the_parquet(run_dir, result):
    got = by_round(result)
    for k in ROUNDS:
        rollouts, evals = rows(run_dir, "rollouts", k), rows(run_dir, "eval", k)
        right = sum(r["reward"] == 1.0 for r in rollouts)
        assert got[k]["rollouts"] == len(rollouts)
        assert got[k]["train_accuracy"] == pytest.approx(right / len(rollouts))
        assert got[k]["failure_rate"] == pytest.approx(1 - right / len(rollouts))
        assert got[k]["heldout_accuracy"] == pytest.approx(sum(r["reward"] == 1.0 for r in evals) / len(evals))
        # and the stages' own metrics agree (they round to 4 places)
        assert got[k]["train_accuracy"] == pytest.approx(stage_metrics(run_dir, "rollout", k)["train_accuracy"], abs=1e-4)
        assert got[k]["heldout_accuracy"] == pytest.approx(stage_metrics(run_dir, "evaluate", k)["heldout_accuracy"], abs=1e-4)


def test_round_zero_held_out_accuracy_comes_from_the_bootstrap_metrics(run_dir, result):
    assert not (run_dir / "data" / "eval" / "round=0").exists()
    assert by_round(result)[0]["heldout_accuracy"] == stage_metrics(run_dir, "evaluate", 0)["heldout_accuracy"]
    assert by_round(result)[0]["train_accuracy"] is None


def test_mining_and_correction_equal_a_recount(run_dir, result):
    got = by_round(result)
    for k in ROUNDS:
        failures = rows(run_dir, "failures", k)
        located = [f for f in failures if f["first_error_step"] is not None]
        checked = [f for f in located if f["true_first_error_step"] is not None]
        assert got[k]["failures"] == len(failures) and got[k]["failures_located"] == len(located)
        assert got[k]["localization_checked"] == len(checked)
        if checked:
            hits = sum(f["first_error_step"] == f["true_first_error_step"] for f in checked)
            assert got[k]["localization_accuracy"] == pytest.approx(hits / len(checked))
            assert got[k]["localization_accuracy"] == pytest.approx(stage_metrics(run_dir, "mine", k)["localization_accuracy"], abs=1e-4)
        assert got[k]["continuations_per_failure"] == pytest.approx(np.mean([f["continuations_spent"] for f in failures]))
        assert got[k]["mining_tokens_per_failure"] == pytest.approx(np.mean([f["tokens_spent"] for f in failures]))
        if located:
            assert got[k]["first_error_step_mean"] == pytest.approx(np.mean([f["first_error_step"] for f in located]))
            assert got[k]["first_error_position_mean"] == pytest.approx(np.mean([f["first_error_step"] / f["n_steps"] for f in located]))
        corrections = rows(run_dir, "corrections", k)
        n_located = sum(c["status"] != "unlocated" for c in corrections)
        corrected = sum(c["status"] == "corrected" for c in corrections)
        assert got[k]["failures_corrected"] == corrected
        assert got[k]["correction_yield"] == (pytest.approx(corrected / n_located) if n_located else None)
        assert got[k]["corrected_branches"] == len(rows(run_dir, "branches", k)) == stage_metrics(run_dir, "correct", k)["corrected_branches"]


def test_first_error_distribution_counts_every_failure(run_dir, result):
    for k in ROUNDS:
        expected = Counter(f["first_error_step"] for f in rows(run_dir, "failures", k))
        part = result.first_errors.filter(pl.col("round") == k)
        assert dict(zip(part["first_error_step"].to_list(), part["failures"].to_list())) == expected
        assert part["share"].sum() == pytest.approx(1.0)


def test_logprob_mismatch_comes_from_the_optimize_metrics(run_dir, result):
    for k in ROUNDS:
        metrics = stage_metrics(run_dir, "optimize", k)
        assert by_round(result)[k]["logprob_mismatch"] == pytest.approx(metrics["logprob_mismatch"])
        assert by_round(result)[k]["logprob_mismatch_max"] == (pytest.approx(metrics["logprob_mismatch_max"]) if "logprob_mismatch_max" in metrics else None)


def test_archive_figures_equal_a_recount_of_the_snapshots(run_dir, result):
    got = by_round(result)
    for k in (0, *ROUNDS):
        snapshot = rows(run_dir, "archive", k)
        assert got[k]["archive_size"] == len(snapshot)
        assert got[k]["archive_solved"] == sum(a["status"] == "solved" for a in snapshot)
        assert got[k]["archive_newly_solved"] == sum(a["status"] == "solved" and a["solved_round"] == k for a in snapshot)


def test_absent_data_reads_as_na(run_dir, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(run_dir / "data", ws / "data", ignore=shutil.ignore_patterns("archive", "corrections"))
    result = audit(workspace_inputs(ws))
    assert result.rounds["archive_size"].null_count() == result.rounds["correction_yield"].null_count() == result.rounds.height
    summary = format_summary(result)
    archive = summary.split("Archive of hard prefixes\n")[1].split("\n\n")[0].splitlines()[1:]
    assert archive and all(line.split()[1:] == ["n/a"] * 3 for line in archive)


def test_archive_statistics_per_snapshot():
    archive = pl.DataFrame({
        "archive_id": ["a", "b", "a", "b", "c", "a", "b", "c"],
        "round": [1, 1, 2, 2, 2, 3, 3, 3],
        "status": ["open", "open", "solved", "open", "open", "solved", "solved", "open"],
        "solved_round": [None, None, 2, None, None, 2, 3, None],
    }, schema_overrides={"round": pl.Int32, "solved_round": pl.Int32})
    got = {r["round"]: r for r in archive_stats(archive.lazy()).collect().to_dicts()}
    assert [(got[k]["archive_size"], got[k]["archive_solved"], got[k]["archive_newly_solved"]) for k in (1, 2, 3)] == [(2, 0, 0), (3, 1, 1), (3, 2, 1)]


def test_archive_and_mismatch_reach_the_summary(run_dir):
    inputs = workspace_inputs(run_dir)
    archive = pl.DataFrame({"archive_id": ["x"], "round": [2], "status": ["solved"], "solved_round": [2]},
                           schema_overrides={"round": pl.Int32, "solved_round": pl.Int32}).lazy()
    metrics = {**inputs.metrics, "optimize": {2: {"logprob_mismatch": 0.01, "logprob_mismatch_max": 0.5}}}
    result = audit(Inputs(frames={**inputs.frames, "archive": archive}, metrics=metrics, origin="test"))
    got = by_round(result)
    assert (got[2]["archive_size"], got[2]["archive_solved"], got[1]["archive_size"]) == (1, 1, None)
    assert (got[2]["logprob_mismatch"], got[2]["logprob_mismatch_max"], got[1]["logprob_mismatch"]) == (0.01, 0.5, None)


def test_metrics_frame_skips_non_numbers():
    frame = metrics_frame({"optimize": {1: {"logprob_mismatch": "x"}, 2: {"logprob_mismatch": 0.25}}})
    assert frame["logprob_mismatch"].to_list() == [None, 0.25]


def test_sound_accuracy_and_right_through_wrong_from_the_metrics_files():
    """Per round from metrics/evaluate and metrics/rollout; older rounds without them (and a task without a step checker) print n/a."""
    metrics = {"evaluate": {0: {"heldout_accuracy": 0.5}, 1: {"heldout_accuracy": 0.6, "sound_accuracy": 0.55}},
               "rollout": {1: {"train_accuracy": 0.3, "right_through_wrong_share": 0.125}}}
    result = audit(Inputs(frames={}, metrics=metrics, origin="here"))
    assert result.rounds.select("round", "heldout_accuracy", "sound_accuracy", "right_through_wrong_share").rows() == [
        (0, 0.5, None, None), (1, 0.6, 0.55, 0.125)]
    text = format_summary(result)
    assert "sound_acc" in text and "right_via_wrong" in text and "0.550" in text and "0.125" in text


def test_repair_success_is_the_share_of_attempted_failures_whose_repair_passed_the_gates():
    frame = pl.LazyFrame({
        "round": [1, 1, 1, 1, 2], "first_error_step": [2, None, None, None, 1], "true_first_error_step": [2, 1, None, 3, 1], "n_steps": [3] * 5,
        "continuations_spent": [4, 4, 0, 4, 1], "tokens_spent": [80, 80, 0, 80, 10],
        "decided_by": ["repair", "repair_unverified", "repair_truncated", "repair_rewrite", "probe"], "repair_attempts": [4, 4, 0, 4, None],
    })
    stats = {row["round"]: row for row in failure_stats(frame).collect().to_dicts()}
    assert stats[1]["repair_success"] == 1 / 3 and stats[2]["repair_success"] is None  # round 2 was mined by search
