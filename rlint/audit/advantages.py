"""Advantages of trained tokens per (round, kind): sufficient statistics, summed from the train set's
per-row summary columns or, for train sets written before them, from the token lists."""

from __future__ import annotations

import polars as pl

from rlint.audit.inputs import ROUND


# per-(round, kind) sufficient statistics of trained-token advantages: the sums over rows of the
# train set's per-row summary columns (rlint/schemas.py; rlint.stages.credit.advantage_summary)
MOMENT_COLUMNS = {
    "round": ROUND, "kind": pl.String, "trained_tokens": pl.Int64, "advantage_sum": pl.Float64, "advantage_sum_sq": pl.Float64,
    "positive_tokens": pl.Int64, "negative_tokens": pl.Int64, "advantage_min": pl.Float64, "advantage_max": pl.Float64,
}
SUMMARY_COLUMNS = tuple(MOMENT_COLUMNS)[2:]  # the train set's per-row columns the moments are summed from


def advantage_moments(train_set: pl.LazyFrame) -> pl.LazyFrame:
    """Sufficient statistics of trained-token advantages per (round, kind), from the per-row summary columns.

    Reads only scalar columns (``trained_tokens``, ``advantage_sum``, ... of schema v3), not the
    token lists. A row without trained tokens adds 0 to every sum and null to min/max; a group
    without any is left out, as in :func:`token_advantage_moments`.
    """
    counts = ["trained_tokens", "positive_tokens", "negative_tokens"]
    return (
        train_set.select("round", "kind", *SUMMARY_COLUMNS)
        .group_by("round", "kind")
        .agg(pl.col(counts).cast(pl.Int64).sum(), pl.col("advantage_sum", "advantage_sum_sq").sum(),
             pl.col("advantage_min").cast(pl.Float64).min(), pl.col("advantage_max").cast(pl.Float64).max())
        .filter(pl.col("trained_tokens") > 0)
        .select(list(MOMENT_COLUMNS))
    )


def token_advantage_moments(train_set: pl.LazyFrame) -> pl.LazyFrame:
    """The same statistics from the token lists, for train sets written before the summary columns (schema v2).

    Explodes ``advantages`` and ``loss_weights`` (list<float32>, one value per token) and keeps
    tokens with weight > 0.
    """
    adv = pl.col("advantages").cast(pl.Float64)
    return (
        train_set.select("round", "kind", "advantages", "loss_weights")
        .explode("advantages", "loss_weights")
        .filter(pl.col("loss_weights") > 0)
        .group_by("round", "kind")
        .agg(
            trained_tokens=pl.len().cast(pl.Int64), advantage_sum=adv.sum(), advantage_sum_sq=(adv * adv).sum(),
            positive_tokens=(adv > 0).sum().cast(pl.Int64), negative_tokens=(adv < 0).sum().cast(pl.Int64),
            advantage_min=adv.min(), advantage_max=adv.max(),
        )
        .select(list(MOMENT_COLUMNS))
    )


def advantage_stats(moments: pl.DataFrame) -> pl.DataFrame:
    """Per (round, kind) and per round over both kinds ("all"): tokens, mean, std (population), shares, min, max."""
    moments = moments.cast(MOMENT_COLUMNS).sort("round", "kind")  # a fixed order of float sums: the same inputs give the same bits
    every = moments.group_by("round", maintain_order=True).agg(
        pl.lit("all").alias("kind"), pl.col("trained_tokens", "advantage_sum", "advantage_sum_sq", "positive_tokens", "negative_tokens").sum(),
        pl.col("advantage_min").min(), pl.col("advantage_max").max(),
    ).select(moments.columns)
    both = pl.concat([moments, every])
    tokens = pl.col("trained_tokens")
    mean = pl.col("advantage_sum") / tokens
    return both.select(
        "round", "kind", tokens=tokens,
        advantage_mean=mean,
        advantage_std=(pl.col("advantage_sum_sq") / tokens - mean * mean).clip(lower_bound=0.0).sqrt(),
        positive_token_share=pl.col("positive_tokens") / tokens,
        negative_token_share=pl.col("negative_tokens") / tokens,
        advantage_min="advantage_min", advantage_max="advantage_max",
    ).sort("round", "kind")


ADVANTAGE_COLUMNS = {
    "round": ROUND, "kind": pl.String, "tokens": pl.Int64, "advantage_mean": pl.Float64, "advantage_std": pl.Float64,
    "positive_token_share": pl.Float64, "negative_token_share": pl.Float64, "advantage_min": pl.Float64, "advantage_max": pl.Float64,
}
