"""What the audit reads: the datasets, their id columns, and :class:`Inputs` (one lazy frame per dataset)."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from rlint.data import DataError


# datasets the audit reads (archive: hard prefixes kept across rounds, one snapshot per round;
# continuations only for lineage)
DATASETS = ("rollouts", "failures", "continuations", "corrections", "branches", "train_set", "eval", "archive")

# id column of each dataset, in the order lineage looks an id up
ID_COLUMNS = {
    "train_set": "example_id", "branches": "branch_id", "continuations": "continuation_id",
    "failures": "failure_id", "rollouts": "rollout_id", "archive": "archive_id",
}

ROUND = pl.Int32


class AuditError(DataError):
    """Bad audit input: an unknown id, no round outputs, an unreadable revision."""


@dataclass(frozen=True)
class Inputs:
    """What the audit reads: one lazy frame per dataset (``None`` when absent), per-stage metrics."""

    frames: dict[str, pl.LazyFrame | None]
    metrics: dict[str, dict[int, dict]] = field(default_factory=dict)  # stage -> round -> metrics JSON
    origin: str = ""  # where it was read from, for the report header
    # the train set's advantage moments (MOMENT_COLUMNS), from the per-row summary columns where a file has
    # them or a per-round cache; None: computed from the token lists of ``frames["train_set"]``
    advantage_moments: pl.LazyFrame | pl.DataFrame | None = None
    # dataset -> rounds that have a file (possibly without rows): their counts are 0, not n/a
    rounds_present: dict[str, list[int]] = field(default_factory=dict)

    def frame(self, dataset: str) -> pl.LazyFrame | None:
        return self.frames.get(dataset)
