"""The audit on the outputs of a small real run: two tiny rounds of the real stages on the committed base policy.

Every figure the audit computes with polars is recomputed here independently, row by row, from the
Parquet files read with pyarrow (and checked against the stages' own metrics files).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from polars.testing import assert_frame_equal

from rlint.audit import Inputs, advantage_moments, advantage_stats, archive_stats, audit, lineage, metrics_frame, token_advantage_moments
from rlint.audit_plots import figures, render_html
from rlint.audit_render import format_lineage, format_summary
from rlint.audit_sources import has_advantage_summary, open_inputs, round_files, workspace_inputs
from rlint.cli import main
from tests.conftest import REPO, make_workspace

ROUNDS = (1, 2)


def make_real_run(path: Path, rounds: tuple[int, ...] = ROUNDS) -> Path:
    """Run rollout..evaluate in-process for ``rounds`` on the committed base policy (round 0)."""
    from rlint.config import load_params
    from rlint.stages import archive, correct, credit, evaluate, mine, optimize, rollout

    ws = make_workspace(path, {
        "bootstrap": {"model_path": str(REPO / "checkpoints" / "round=0")},
        "rollout": {"prompts_per_round": 8, "samples_per_prompt": 8},  # the sparse base: enough groups with a right sample to grow branches
        "mine": {"continuations_per_probe": 4},
        "sampling": {"max_new_tokens": 64},
    }, rounds=max(rounds))
    shutil.copytree(REPO / "checkpoints" / "round=0", ws / "checkpoints" / "round=0")
    (ws / "metrics" / "evaluate").mkdir(parents=True)
    shutil.copy(REPO / "metrics" / "evaluate" / "round=0.json", ws / "metrics" / "evaluate" / "round=0.json")
    params = load_params(ws / "params.yaml")
    from rlint.inputs import write_input_record

    for key in params.inputs:  # the model folder's content record (dvc.yaml: input@bootstrap.model_path)
        write_input_record(params, key, ws)
    archive.run(params, 0, ws)  # the empty archive round 1 starts from (dvc.yaml: archive_base)
    for k in rounds:
        for stage in (rollout, mine, correct, archive, credit, optimize, evaluate):
            stage.run(params, k, ws)
    return ws


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_real_run(tmp_path_factory.mktemp("audit") / "ws")


@pytest.fixture(scope="module")
def result(run_dir):
    return audit(workspace_inputs(run_dir))


def rows(ws: Path, dataset: str, k: int) -> list[dict]:
    return pq.read_table(ws / "data" / dataset / f"round={k}" / "part-0.parquet").to_pylist()


def stage_metrics(ws: Path, stage: str, k: int) -> dict:
    return json.loads((ws / "metrics" / stage / f"round={k}.json").read_text())


def by_round(result) -> dict[int, dict]:
    return {r["round"]: r for r in result.rounds.to_dicts()}


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
    from rlint.audit import SUMMARY_COLUMNS

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


def test_html_is_self_contained_with_every_figure_embedded(result):
    page = render_html(result)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(figures(result)) == 7
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)


def test_cli_prints_the_summary_and_writes_html_and_dvc_plots(run_dir, tmp_path, capsys):
    html = tmp_path / "report.html"
    assert main(["audit", "--root", str(run_dir), "--html", str(html), "--plots", str(run_dir / "audit")]) == 0
    out = capsys.readouterr().out
    assert "Outcomes" in out and "Advantages of trained tokens, by kind" in out and html.is_file()
    # every image plot that dvc.yaml declares is written by the audit
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    assert declared and all((run_dir / p).is_file() for p in declared)
    assert json.loads((run_dir / "audit" / "rounds.json").read_text())[1]["round"] == 1


def test_cli_lineage_and_bad_input_exit_2_with_one_line(run_dir, tmp_path, capsys):
    rollout_id = rows(run_dir, "rollouts", 2)[0]["rollout_id"]
    assert main(["audit", "--root", str(run_dir), "--lineage", rollout_id]) == 0
    assert "sampled by policy_version 1 (checkpoints/round=1)" in capsys.readouterr().out
    for args, message in (
        (["audit", "--root", str(run_dir), "--lineage", "r1-nope-s0"], "id 'r1-nope-s0' not found"),
        (["audit", "--root", str(tmp_path)], "no round outputs"),
        (["audit", "--root", str(tmp_path / "absent")], "no such directory"),
        (["audit", "--root", str(run_dir), "--rev", "HEAD"], "cannot read git revision 'HEAD'"),  # not a git repository
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_cached_advantage_moments_equal_a_fresh_read_and_follow_a_rewritten_round(run_dir, result, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(run_dir / "data", ws / "data")
    cache = tmp_path / "cache"
    first = audit(workspace_inputs(ws, cache_dir=cache))  # computes every round, fills the cache
    assert (cache / "advantage_moments.v2.parquet").is_file()
    again = audit(workspace_inputs(ws, cache_dir=cache))  # every round from the cache
    assert_frame_equal(first.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)
    assert_frame_equal(again.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)
    # a stage rewrites round 2: the cache entry no longer matches the file and is recomputed
    path = ws / "data" / "train_set" / "round=2" / "part-0.parquet"
    table = pq.read_table(path)
    doubled = pl.from_arrow(table).with_columns(
        pl.col("advantages").list.eval(pl.element() * 2), pl.col("advantage_sum", "advantage_min", "advantage_max") * 2, pl.col("advantage_sum_sq") * 4,
    ).to_arrow().cast(table.schema)
    pq.write_table(doubled, path)
    changed = audit(workspace_inputs(ws, cache_dir=cache)).advantages
    old, new = (f.filter((pl.col("round") == 2) & (pl.col("kind") == "all"))["advantage_mean"].item() for f in (result.advantages, changed))
    assert new == pytest.approx(2 * old)
    assert_frame_equal(changed.filter(pl.col("round") == 1), result.advantages.filter(pl.col("round") == 1), rel_tol=1e-12, abs_tol=1e-12)


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


def test_metrics_frame_skips_non_numbers():
    frame = metrics_frame({"optimize": {1: {"logprob_mismatch": "x"}, 2: {"logprob_mismatch": 0.25}}})
    assert frame["logprob_mismatch"].to_list() == [None, 0.25]


def test_sound_accuracy_and_right_through_wrong_from_the_metrics_files():
    """Per round from metrics/evaluate and metrics/rollout; older rounds without them (and a task without a step checker) print n/a."""
    from rlint.audit_render import format_summary

    metrics = {"evaluate": {0: {"heldout_accuracy": 0.5}, 1: {"heldout_accuracy": 0.6, "sound_accuracy": 0.55}},
               "rollout": {1: {"train_accuracy": 0.3, "right_through_wrong_share": 0.125}}}
    result = audit(Inputs(frames={}, metrics=metrics, origin="here"))
    assert result.rounds.select("round", "heldout_accuracy", "sound_accuracy", "right_through_wrong_share").rows() == [
        (0, 0.5, None, None), (1, 0.6, 0.55, 0.125)]
    text = format_summary(result)
    assert "sound_acc" in text and "right_via_wrong" in text and "0.550" in text and "0.125" in text


# ---------------------------------------------------------------------------------------------
# Older revisions through DVC: a git + DVC repository holding the run, one commit per round.

BIN = str(Path(sys.executable).parent)


def _sh(ws: Path, *args: str) -> str:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(ws), "PYTHONDONTWRITEBYTECODE": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(args, cwd=ws, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def git_repo(run_dir, tmp_path_factory) -> Path:
    """The run as a git + DVC repository: commit 1 holds round 1 (dvc.lock + DVC cache), commit 2 adds round 2."""
    repo = tmp_path_factory.mktemp("git") / "repo"
    shutil.copytree(run_dir, repo, ignore=shutil.ignore_patterns("audit"))
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    later = tmp_path_factory.mktemp("later")
    for path in [*repo.glob("data/*/round=2"), repo / "checkpoints" / "round=2", *repo.glob("metrics/*/round=2.json")]:
        target = later / path.relative_to(repo)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["rounds"].pop("r2")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    python = sys.executable
    _sh(repo, "git", "init", "-q")
    _sh(repo, python, "-m", "dvc", "init", "-q")
    _sh(repo, python, "-m", "dvc", "commit", "-f", "-q")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "round 1")
    shutil.copytree(later, repo, dirs_exist_ok=True)
    shutil.copy(run_dir / "params.yaml", repo / "params.yaml")
    _sh(repo, python, "-m", "dvc", "commit", "-f", "-q")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "round 2")
    shutil.rmtree(repo / "data")  # a revision is read from the DVC cache, not the workspace
    return repo


@pytest.mark.slow
def test_audit_of_an_older_revision_reads_it_through_dvc(git_repo, result):
    with open_inputs(git_repo, "HEAD~1") as inputs:
        old = audit(inputs)
    with open_inputs(git_repo, "HEAD") as inputs:
        new = audit(inputs)
    assert old.rounds["round"].to_list() == [0, 1] and new.rounds["round"].to_list() == [0, 1, 2]
    assert not (git_repo / "data").exists()
    columns = ["round", "train_accuracy", "heldout_accuracy", "failures_located", "correction_yield", "trained_tokens", "advantage_mean"]
    assert new.rounds.select(columns).equals(result.rounds.select(columns))
    assert old.rounds.select(columns).equals(result.rounds.filter(pl.col("round") <= 1).select(columns))
    # float sums may differ in the last bits when the same rows come from other files
    assert_frame_equal(old.advantages, result.advantages.filter(pl.col("round") <= 1), rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.slow
def test_cli_rev_summary_lineage_and_bad_rev(git_repo, capsys):
    assert main(["audit", "--root", str(git_repo), "--rev", "HEAD~1"]) == 0
    out = capsys.readouterr().out
    assert f"{git_repo}@HEAD~1: 2 round(s), 0..1" in out
    assert not (git_repo / "audit").exists()  # no plot files for another revision unless asked
    branch_id = None
    with open_inputs(git_repo, "HEAD") as inputs:
        branch_id = inputs.frame("branches").select("branch_id").head(1).collect().item()
    assert main(["audit", "--root", str(git_repo), "--rev", "HEAD", "--lineage", branch_id]) == 0
    assert "prompt" in capsys.readouterr().out
    assert main(["audit", "--root", str(git_repo), "--rev", "no-such-rev"]) == 2
    assert "unknown Git revision 'no-such-rev'" in capsys.readouterr().err


def test_repair_success_is_the_share_of_attempted_failures_whose_repair_passed_the_gates():
    import polars as pl

    from rlint.audit import failure_stats

    frame = pl.LazyFrame({
        "round": [1, 1, 1, 1, 2], "first_error_step": [2, None, None, None, 1], "true_first_error_step": [2, 1, None, 3, 1], "n_steps": [3] * 5,
        "continuations_spent": [4, 4, 0, 4, 1], "tokens_spent": [80, 80, 0, 80, 10],
        "decided_by": ["repair", "repair_unverified", "repair_truncated", "repair_rewrite", "probe"], "repair_attempts": [4, 4, 0, 4, None],
    })
    stats = {row["round"]: row for row in failure_stats(frame).collect().to_dicts()}
    assert stats[1]["repair_success"] == 1 / 3 and stats[2]["repair_success"] is None  # round 2 was mined by search
