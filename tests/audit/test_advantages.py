"""Advantage statistics of trained tokens (rlint/audit/advantages.py): numpy recounts, both ways of reading the train set."""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from rlint.audit.advantages import SUMMARY_COLUMNS, advantage_moments, advantage_stats, token_advantage_moments
from rlint.audit.sources import has_advantage_summary, round_files, workspace_inputs
from rlint.audit.summary import audit
from tests.audit.run import ROUNDS, by_round, rows, stage_metrics


def test_advantage_statistics_equal_numpy_over_trained_tokens(run_dir, result):
    for k in ROUNDS:
        tokens = defaultdict(list)
        for example in rows(run_dir, "train_set", k):
            adv, w = np.asarray(example["advantages"], dtype=np.float64), np.asarray(example["loss_weights"])
            tokens[example["kind"]].extend(adv[w > 0])
            tokens["all"].extend(adv[w > 0])
        for kind, values in tokens.items():
            values = np.asarray(values)
            (got,) = result.advantages.filter((pl.col("round") == k) & (pl.col("kind") == kind)).to_dicts()
            assert got["tokens"] == len(values)
            assert got["advantage_mean"] == pytest.approx(values.mean(), abs=1e-9)
            assert got["advantage_std"] == pytest.approx(values.std(), abs=1e-6)
            assert got["positive_token_share"] == pytest.approx((values > 0).mean())
            assert got["negative_token_share"] == pytest.approx((values < 0).mean())
            assert (got["advantage_min"], got["advantage_max"]) == pytest.approx((values.min(), values.max()))
        credit = stage_metrics(run_dir, "credit", k)
        assert by_round(result)[k]["trained_tokens"] == credit["trained_tokens"]
        assert by_round(result)[k]["advantage_mean"] == pytest.approx(credit["advantage_mean"], abs=1e-4)


def test_train_set_summary_columns_equal_a_recount_of_the_token_lists(run_dir):
    kinds = set()
    for k in ROUNDS:
        examples = rows(run_dir, "train_set", k)
        assert examples
        kinds |= {e["kind"] for e in examples}
        for e in examples:
            trained = [float(a) for a, w in zip(e["advantages"], e["loss_weights"]) if w > 0]
            assert e["trained_tokens"] == len(trained), e["example_id"]
            assert e["advantage_sum"] == pytest.approx(sum(trained), rel=1e-12, abs=1e-12)
            assert e["advantage_sum_sq"] == pytest.approx(sum(a * a for a in trained), rel=1e-12, abs=1e-12)
            assert (e["positive_tokens"], e["negative_tokens"]) == (sum(a > 0 for a in trained), sum(a < 0 for a in trained))
            assert (e["advantage_min"], e["advantage_max"]) == ((min(trained), max(trained)) if trained else (None, None))
        assert has_advantage_summary(run_dir / "data" / "train_set" / f"round={k}" / "part-0.parquet")
    assert "branch" in kinds  # corrected branches were recounted too (the sparse base grows few: not one in every round)


def test_summary_columns_and_token_lists_give_the_same_statistics(run_dir, result):
    """The audit sums the per-row columns; the token lists (the path for older data) give the same figures."""
    from_tokens = audit(replace(workspace_inputs(run_dir), advantage_moments=None))  # None: from frames["train_set"]
    assert_frame_equal(from_tokens.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)
    columns = ["round", "trained_tokens", "advantage_mean", "advantage_std", "advantage_min", "advantage_max"]
    assert_frame_equal(from_tokens.rounds.select(columns), result.rounds.select(columns), rel_tol=1e-12, abs_tol=1e-12)


def _downgrade_train_set(path: Path) -> None:
    """Rewrite a train_set file as schema v2 wrote it: without the per-row summary columns."""
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(list(SUMMARY_COLUMNS)), path, compression="zstd")


def test_train_sets_without_summary_columns_still_audit(run_dir, result, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(run_dir / "data", ws / "data")
    _downgrade_train_set(ws / "data" / "train_set" / "round=1" / "part-0.parquet")  # round 1 old, round 2 new
    files = round_files(ws, "train_set")
    assert not has_advantage_summary(files[1]) and has_advantage_summary(files[2])
    mixed = audit(workspace_inputs(ws))
    assert_frame_equal(mixed.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)
    _downgrade_train_set(files[2])
    old = audit(workspace_inputs(ws))
    assert_frame_equal(old.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)
    assert old.rounds["trained_tokens"].to_list() == result.rounds.filter(pl.col("round") >= 1)["trained_tokens"].to_list()  # ws: no metrics
    cached = audit(workspace_inputs(ws, cache_dir=tmp_path / "cache"))
    assert_frame_equal(cached.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)


def test_rows_with_nulls_in_the_summary_are_read_from_their_token_lists(run_dir, result, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(run_dir / "data", ws / "data")
    path = ws / "data" / "train_set" / "round=2" / "part-0.parquet"
    table = pq.read_table(path)
    trained = pl.from_arrow(table).filter(pl.col("trained_tokens") > 0)["example_id"][0]  # a row whose tokens count
    broken = pl.from_arrow(table).with_columns(trained_tokens=pl.when(pl.col("example_id") == trained).then(None).otherwise("trained_tokens"))
    pq.write_table(broken.to_arrow().cast(table.schema), path)
    assert not has_advantage_summary(path)
    assert_frame_equal(audit(workspace_inputs(ws)).advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)


def test_advantage_stats_of_both_kinds_pool_their_tokens():
    from rlint.train_set import advantage_summary

    # rows without trained tokens (round 1: -7 and 9; round 2 has none at all) change nothing
    train_set = pl.DataFrame({
        "round": [1, 1, 1, 1, 1, 2], "kind": ["rollout", "branch", "rollout", "rollout", "branch", "rollout"],
        "advantages": [[1.0, -1.0, 5.0], [0.5, 0.5], [2.0], [-7.0], [9.0], [3.0]],
        "loss_weights": [[1.0, 1.0, 0.0], [1.0, 1.0], [1.0], [0.0], [0.0], [0.0]],
    }, schema_overrides={"round": pl.Int32, "advantages": pl.List(pl.Float32), "loss_weights": pl.List(pl.Float32)})
    summaries = [advantage_summary(np.array(a), np.array(w)) for a, w in zip(train_set["advantages"].to_list(), train_set["loss_weights"].to_list())]
    summarized = pl.concat([train_set, pl.DataFrame(summaries)], how="horizontal")
    every = np.array([1.0, -1.0, 0.5, 0.5, 2.0])  # the 5.0 has weight 0
    for moments in (token_advantage_moments(train_set.lazy()), advantage_moments(summarized.lazy())):
        table = advantage_stats(moments.collect())
        assert table["round"].to_list() == [1, 1, 1]
        stats = {r["kind"]: r for r in table.to_dicts()}
        assert stats["all"]["tokens"] == 5 and stats["all"]["advantage_mean"] == pytest.approx(every.mean())
        assert stats["all"]["advantage_std"] == pytest.approx(every.std())
        assert stats["rollout"]["advantage_max"] == 2.0 and stats["branch"]["advantage_std"] == pytest.approx(0.0)
        assert stats["rollout"]["positive_token_share"] == pytest.approx(2 / 3) and stats["rollout"]["negative_token_share"] == pytest.approx(1 / 3)


def test_advantage_summary_of_a_row_without_trained_tokens():
    from rlint.train_set import advantage_summary

    assert advantage_summary(np.array([0.3, -2.0]), np.array([0.0, 0.0])) == {
        "trained_tokens": 0, "advantage_sum": 0.0, "advantage_sum_sq": 0.0, "positive_tokens": 0, "negative_tokens": 0,
        "advantage_min": None, "advantage_max": None,
    }
    # the values are taken as the float32 the train set stores
    assert advantage_summary(np.array([0.1]), np.array([1.0]))["advantage_sum"] == float(np.float32(0.1))
