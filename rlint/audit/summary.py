"""The audit: how the internal supervision evolves across rounds, computed from every round's Parquet.

Pure functions over polars LazyFrames: each statistic is one query over all rounds of one dataset
(``data/<dataset>/round=*/``), grouped by ``round``; a dataset that is absent (``None``) gives
nulls, which the renderers print as "n/a". Reading (a workspace or a git revision through DVC)
lives in :mod:`rlint.audit.sources`, printing in :mod:`rlint.audit.render`, plotting in
:mod:`rlint.audit.plots`; the advantage statistics in :mod:`rlint.audit.advantages`.

Definitions (the column names of :func:`round_summary`):

- ``train_accuracy``: share of the round's rollouts with reward 1 (unscorable counts as wrong, as
  in the rollout stage); ``failure_rate`` = 1 - ``train_accuracy``.
- ``heldout_accuracy``: the same share over ``data/eval``; from ``metrics/evaluate/round=<k>.json``
  where the round has no eval data (round 0, the base policy).
- ``sound_accuracy``: share of the held-out answers that are right and have every step right (the
  step checker), and ``right_through_wrong_share``: share of the round's right rollouts that pass
  through a wrong step; from ``metrics/evaluate`` and ``metrics/rollout`` (null without a step
  checker, and for rounds written before them).
- ``localization_accuracy``: share of located failures whose ``first_error_step`` equals the true
  one, over the failures whose true first error is known (``localization_checked``).
- ``continuations_per_failure`` / ``mining_tokens_per_failure``: mining cost, mean of
  ``continuations_spent`` / ``tokens_spent`` over the round's failures.
- ``correction_yield``: corrected failures / located failures (``data/corrections``).
- ``archive_size``: rows of the archive snapshot after the round; ``archive_solved``: those of
  them a later round solved (status "solved"); ``archive_newly_solved``: solved in this round.
- advantage statistics: over trained tokens (loss weight > 0) of ``data/train_set``, per round
  and per kind (``rollout``, ``branch``, ``all``); summed from the per-row summary columns the
  credit stage writes (``trained_tokens``, ``advantage_sum``, ...), or, for train sets written
  before them, from the token lists.
- ``logprob_mismatch`` / ``logprob_mismatch_max``: sampler-versus-trainer log-probability
  difference, from ``metrics/optimize/round=<k>.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from rlint.audit.advantages import ADVANTAGE_COLUMNS, advantage_stats, token_advantage_moments
from rlint.audit.inputs import ROUND, AuditError, Inputs


@dataclass(frozen=True)
class Audit:
    """The audit's tables, each a small polars DataFrame sorted by round."""

    rounds: pl.DataFrame  # one row per round, columns as in the module docstring
    first_errors: pl.DataFrame  # round, first_error_step (null: not located), failures, share
    advantages: pl.DataFrame  # round, kind, tokens, advantage_mean/std/min/max, positive/negative_token_share
    origin: str = ""


def _right(column: str = "reward") -> pl.Expr:
    """Reward exactly 1; unscorable (null) counts as wrong."""
    return (pl.col(column) == 1.0).fill_null(False)


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den as float, null where den is 0."""
    return pl.when(den > 0).then(num.cast(pl.Float64) / den).otherwise(None)


def rollout_stats(rollouts: pl.LazyFrame) -> pl.LazyFrame:
    """round, rollouts, policy_version, train_accuracy, failure_rate."""
    return rollouts.group_by("round").agg(
        rollouts=pl.len(),
        policy_version=pl.col("policy_version").max(),
        train_accuracy=_right().mean(),
    ).with_columns(failure_rate=1.0 - pl.col("train_accuracy"))


def heldout_stats(evals: pl.LazyFrame) -> pl.LazyFrame:
    """round, heldout_accuracy (greedy accuracy on the held-out problems)."""
    return evals.group_by("round").agg(heldout_accuracy=_right().mean())


def failure_stats(failures: pl.LazyFrame) -> pl.LazyFrame:
    """round, failures, failures_located, localization_accuracy/_checked, first-error position, mining cost, repair success.

    ``repair_success``: among failures given repair attempts (``mine.strategy: repair``), the share
    whose repair passed every gate; null in rounds mined by search. Rising over rounds, it is the
    internal supervision improving with the policy.
    """
    located = pl.col("first_error_step").is_not_null()
    attempted = pl.col("repair_attempts").fill_null(0) > 0
    checked = located & pl.col("true_first_error_step").is_not_null()
    return failures.group_by("round").agg(
        failures=pl.len(),
        failures_located=located.sum(),
        localization_checked=checked.sum(),
        localization_hits=(checked & (pl.col("first_error_step") == pl.col("true_first_error_step"))).sum(),
        first_error_step_mean=pl.col("first_error_step").mean(),
        # where in the solution the first error falls: step / steps, 1 = the last step
        first_error_position_mean=(pl.col("first_error_step") / pl.col("n_steps")).mean(),
        continuations_per_failure=pl.col("continuations_spent").mean(),
        mining_tokens_per_failure=pl.col("tokens_spent").mean(),
        repair_attempted=attempted.sum(),
        repair_hits=(attempted & (pl.col("decided_by") == "repair")).sum(),
    ).with_columns(
        localization_accuracy=_ratio(pl.col("localization_hits"), pl.col("localization_checked")),
        repair_success=_ratio(pl.col("repair_hits"), pl.col("repair_attempted")),
    ).drop("localization_hits", "repair_hits", "repair_attempted")


def correction_stats(corrections: pl.LazyFrame) -> pl.LazyFrame:
    """round, failures_corrected, correction_yield (corrected / located), correction_samples_per_failure."""
    located = pl.col("status") != "unlocated"
    return corrections.group_by("round").agg(
        failures_corrected=(pl.col("status") == "corrected").sum(),
        corrections_located=located.sum(),
        correction_samples=pl.col("samples_spent").filter(located).sum(),
    ).with_columns(
        correction_yield=_ratio(pl.col("failures_corrected"), pl.col("corrections_located")),
        correction_samples_per_failure=_ratio(pl.col("correction_samples"), pl.col("corrections_located")),
    ).drop("corrections_located", "correction_samples")


def branch_stats(branches: pl.LazyFrame) -> pl.LazyFrame:
    """round, corrected_branches."""
    return branches.group_by("round").agg(corrected_branches=pl.len())


def archive_stats(archive: pl.LazyFrame) -> pl.LazyFrame:
    """round, archive_size, archive_solved (by a later round, cumulative), archive_newly_solved (this round)."""
    solved = pl.col("status") == "solved"
    return archive.group_by("round").agg(
        archive_size=pl.len(),
        archive_solved=solved.sum(),
        archive_newly_solved=(solved & (pl.col("solved_round") == pl.col("round"))).sum(),
    )


def first_error_distribution(failures: pl.LazyFrame) -> pl.LazyFrame:
    """round, first_error_step (null: not located), failures, share (of the round's failures)."""
    return failures.group_by("round", "first_error_step").agg(failures=pl.len()).with_columns(
        share=pl.col("failures") / pl.col("failures").sum().over("round"),
    )


# (column, stage, key) of the per-round figures read from the stage metrics files
METRIC_COLUMNS = (
    ("heldout_accuracy_metrics", "evaluate", "heldout_accuracy"), ("sound_accuracy", "evaluate", "sound_accuracy"),
    ("right_through_wrong_share", "rollout", "right_through_wrong_share"),
    ("logprob_mismatch", "optimize", "logprob_mismatch"), ("logprob_mismatch_max", "optimize", "logprob_mismatch_max"),
)


def metrics_frame(metrics: dict[str, dict[int, dict]]) -> pl.DataFrame:
    """round and each column of :data:`METRIC_COLUMNS` from the stage metrics files (null where absent or not a number)."""
    rounds = sorted({k for per_round in metrics.values() for k in per_round})

    def value(stage: str, k: int, key: str) -> float | None:
        v = metrics.get(stage, {}).get(k, {}).get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return pl.DataFrame({"round": rounds, **{column: [value(stage, k, key) for k in rounds] for column, stage, key in METRIC_COLUMNS}},
                        schema={"round": ROUND, **{column: pl.Float64 for column, _, _ in METRIC_COLUMNS}})


# per-dataset queries of the round summary: dataset -> (query, the columns it gives)
_QUERIES = {
    "rollouts": (rollout_stats, {"rollouts": pl.UInt32, "policy_version": pl.Int32, "train_accuracy": pl.Float64, "failure_rate": pl.Float64}),
    "eval": (heldout_stats, {"heldout_accuracy": pl.Float64}),
    "failures": (failure_stats, {
        "failures": pl.UInt32, "failures_located": pl.UInt32, "localization_checked": pl.UInt32,
        "first_error_step_mean": pl.Float64, "first_error_position_mean": pl.Float64,
        "continuations_per_failure": pl.Float64, "mining_tokens_per_failure": pl.Float64, "localization_accuracy": pl.Float64,
        "repair_success": pl.Float64,
    }),
    "corrections": (correction_stats, {"failures_corrected": pl.UInt32, "correction_yield": pl.Float64, "correction_samples_per_failure": pl.Float64}),
    "branches": (branch_stats, {"corrected_branches": pl.UInt32}),
    "archive": (archive_stats, {"archive_size": pl.UInt32, "archive_solved": pl.UInt32, "archive_newly_solved": pl.UInt32}),
}


FIRST_ERROR_COLUMNS = {"round": ROUND, "first_error_step": pl.Int32, "failures": pl.UInt32, "share": pl.Float64}


def audit(inputs: Inputs) -> Audit:
    """Every per-round table of the audit; the queries run together (``pl.collect_all``)."""
    names, queries = [], []
    for dataset, (query, _) in _QUERIES.items():
        frame = inputs.frame(dataset)
        if frame is not None:
            names.append(dataset)
            queries.append(query(frame))
    failures, train_set = inputs.frame("failures"), inputs.frame("train_set")
    if failures is not None:
        names.append("first_errors")
        queries.append(first_error_distribution(failures))
    moments = inputs.advantage_moments
    if moments is None and train_set is not None:
        moments = token_advantage_moments(train_set)
    if isinstance(moments, pl.LazyFrame):
        names.append("advantages")
        queries.append(moments)
    results = dict(zip(names, pl.collect_all(queries)))
    if isinstance(moments, pl.DataFrame):
        names.append("advantages")
        results["advantages"] = moments

    from_metrics = metrics_frame(inputs.metrics)
    rounds = pl.concat([from_metrics.select("round")] + [results[n].select(pl.col("round").cast(ROUND)) for n in names]).unique()
    if rounds.is_empty():
        raise AuditError(f"{inputs.origin}: no round outputs (data/<dataset>/round=<k>/ or metrics/<stage>/round=<k>.json); run some rounds first")
    advantages = advantage_stats(results["advantages"]) if "advantages" in results else pl.DataFrame(schema=ADVANTAGE_COLUMNS)
    table = rounds
    for dataset, (_, columns) in _QUERIES.items():
        part = results[dataset] if dataset in results else pl.DataFrame(schema={"round": ROUND, **columns})
        table = table.join(part.with_columns(pl.col("round").cast(ROUND)), on="round", how="left")
        present = pl.col("round").is_in(inputs.rounds_present.get(dataset, []))
        table = table.with_columns(  # an empty file (no branches, an empty archive) counts 0
            pl.when(present).then(pl.col(c).fill_null(0)).otherwise(pl.col(c)).alias(c) for c, t in columns.items() if t == pl.UInt32
        )
    overall = advantages.filter(pl.col("kind") == "all").drop("kind").rename({"tokens": "trained_tokens"})
    table = table.join(overall.cast({"round": ROUND}), on="round", how="left").join(from_metrics, on="round", how="left")
    table = table.with_columns(
        heldout_accuracy=pl.coalesce("heldout_accuracy", "heldout_accuracy_metrics"),
    ).drop("heldout_accuracy_metrics").sort("round")
    first_errors = (results["first_errors"] if "first_errors" in results else pl.DataFrame(schema=FIRST_ERROR_COLUMNS))
    first_errors = first_errors.cast(FIRST_ERROR_COLUMNS).select(list(FIRST_ERROR_COLUMNS)).sort("round", "first_error_step", nulls_last=True)
    return Audit(rounds=table, first_errors=first_errors, advantages=advantages.cast(ADVANTAGE_COLUMNS), origin=inputs.origin)
