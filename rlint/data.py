"""Versioned Parquet datasets: one explicit schema per dataset, one folder per round.

Layout: ``data/<dataset>/round=<k>/part-0.parquet`` (zstd), rows sorted by their id. Ids tie
rows together across stages and rounds::

    rollout_id  r<k>-<problem_id>-s<j>      sample j of a problem in round k
    failure_id  = rollout_id of the failed rollout
    continuation_id  <failure_id>-p<prefix steps>-c<i>
    branch_id   = continuation_id of the continuation that became a corrected branch
    example_id  = rollout_id or branch_id
    archive_id  = failure_id of an archived hard failure; replays of it carry it in ``rollouts``

``policy_version`` is the round of the checkpoint that sampled the row (0: the base policy).
Writes are atomic (rlint/atomic.py): a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rlint.atomic import replace_file_atomic

SCHEMA_VERSION = "2"

_ids = pa.list_(pa.int32())
_floats = pa.list_(pa.float32())

SCHEMAS: dict[str, pa.Schema] = {
    "rollouts": pa.schema([
        ("rollout_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("sample_index", pa.int32()),
        ("prompt", pa.string()),
        ("answer", pa.string()),
        ("prompt_token_ids", _ids),
        ("token_ids", _ids),  # completion tokens
        ("logprobs", _floats),  # sampler log-probability of each completion token
        ("step_ends", _ids),  # exclusive end offset of each step in token_ids
        ("completion", pa.string()),
        ("finish_reason", pa.string()),
        ("reward", pa.float32()),  # 1 right, 0 wrong, null cannot be scored
        ("true_first_error_step", pa.int32()),  # ground truth (evaluation only), null if none or unknown;
        # for a replay, counted from the end of the archived prefix (0: the error is inside it)
        ("archive_id", pa.string()),  # the archive entry this rollout restarted from; null for a fresh problem
        ("prefix_token_count", pa.int32()),  # archived prefix tokens at the end of prompt_token_ids (0 if fresh)
    ]),
    "failures": pa.schema([
        ("failure_id", pa.string()),
        ("rollout_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("n_steps", pa.int32()),
        ("first_error_step", pa.int32()),  # 1-based; null when not located
        ("value_before", pa.float32()),  # estimated value of the last good prefix
        ("value_after", pa.float32()),  # estimated value after the first wrong step
        ("probe_steps", _ids),  # prefixes (in steps) whose value was estimated, in probe order
        ("probe_values", _floats),  # their estimated values
        ("decided_by", pa.string()),  # "probe", "sibling", "oracle", "prompt_unsolved", "no_steps"
        ("continuations_spent", pa.int32()),
        ("tokens_spent", pa.int32()),
        ("true_first_error_step", pa.int32()),
    ]),
    "continuations": pa.schema([
        ("continuation_id", pa.string()),
        ("failure_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("prefix_steps", pa.int32()),  # continued after this many steps of the failed rollout
        ("prefix_token_count", pa.int32()),  # = step_ends[prefix_steps - 1], 0 for the prompt alone
        ("token_ids", _ids),
        ("logprobs", _floats),
        ("completion", pa.string()),
        ("reward", pa.float32()),
        ("stage", pa.string()),  # "mine" or "correct"
    ]),
    "branches": pa.schema([
        ("branch_id", pa.string()),
        ("failure_id", pa.string()),
        ("parent_rollout_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("branch_step", pa.int32()),  # the branch replaces the parent from step branch_step + 1 on
        ("branch_token_offset", pa.int32()),  # parent completion tokens kept as context
        ("token_ids", _ids),
        ("logprobs", _floats),
        ("completion", pa.string()),
        ("reward", pa.float32()),
        ("value_before", pa.float32()),
    ]),
    "corrections": pa.schema([
        ("failure_id", pa.string()),
        ("round", pa.int32()),
        ("status", pa.string()),  # "corrected", "uncorrected" (a hard case), "unlocated"
        ("samples_spent", pa.int32()),  # continuations drawn by the correct stage itself
        ("n_branches", pa.int32()),
    ]),
    "archive": pa.schema([  # a full snapshot after the round: every entry ever archived (rlint/archive.py)
        ("archive_id", pa.string()),  # = failure_id of the failure that was archived
        ("round", pa.int32()),  # the snapshot's round
        ("origin_round", pa.int32()),
        ("problem_id", pa.string()),
        ("failure_id", pa.string()),
        ("prompt", pa.string()),  # the problem's own prompt
        ("answer", pa.string()),
        ("context_token_ids", _ids),  # prompt + last good prefix: where replays restart
        ("prefix_token_count", pa.int32()),  # completion tokens of the parent kept in the context
        ("prefix_steps", pa.int32()),  # steps of the parent kept (0: the prompt alone)
        ("reason", pa.string()),  # "uncorrected" or "unlocated"
        ("status", pa.string()),  # "open", "solved" or "retired"
        ("replays", pa.int32()),  # rounds that restarted from it
        ("solved_round", pa.int32()),  # null unless solved
        ("true_first_error_step", pa.int32()),  # of the parent rollout (evaluation only)
    ]),
    "train_set": pa.schema([
        ("example_id", pa.string()),
        ("kind", pa.string()),  # "rollout" or "branch"
        ("rollout_id", pa.string()),  # the rollout, or the branch's parent
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("context_token_ids", _ids),  # prompt (+ parent prefix for a branch): no loss
        ("token_ids", _ids),  # trained tokens
        ("logprobs", _floats),  # sampler log-probabilities of token_ids
        ("advantages", _floats),  # per-token advantage
        ("loss_weights", _floats),  # per-token weight, 0 masks the token
        ("reward", pa.float32()),
        ("sft", pa.bool_()),  # passed the task's format gate and its verifier: eligible for the supervised loss
    ]),
    "eval": pa.schema([
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("prompt", pa.string()),
        ("answer", pa.string()),
        ("completion", pa.string()),
        ("reward", pa.float32()),
        ("true_first_error_step", pa.int32()),
    ]),
}

SORT_KEYS = {
    "rollouts": "rollout_id", "failures": "failure_id", "continuations": "continuation_id",
    "branches": "branch_id", "corrections": "failure_id", "archive": "archive_id", "train_set": "example_id", "eval": "problem_id",
}


class DataError(ValueError):
    """A stage input is missing or does not match its schema; the message names the file."""


def dataset_path(root: str | Path, dataset: str, round_id: int) -> Path:
    return Path(root) / "data" / dataset / f"round={round_id}" / "part-0.parquet"


def to_table(dataset: str, rows: list[dict]) -> pa.Table:
    """Rows as a table of the dataset's schema, sorted by its id column."""
    schema = SCHEMAS[dataset].with_metadata({"rlint.dataset": dataset, "rlint.schema_version": SCHEMA_VERSION})
    key = SORT_KEYS[dataset]
    rows = sorted(rows, key=lambda row: row[key])
    return pa.Table.from_pylist(rows, schema=schema)


def write_atomic(table: pa.Table, path: Path) -> None:
    replace_file_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd", compression_level=3))


def write_rows(root: str | Path, dataset: str, round_id: int, rows: list[dict]) -> Path:
    path = dataset_path(root, dataset, round_id)
    write_atomic(to_table(dataset, rows), path)
    return path


def read_table(root: str | Path, dataset: str, round_id: int) -> pa.Table:
    """Read one round of a dataset, checking that its columns match the schema."""
    path = dataset_path(root, dataset, round_id)
    if not path.is_file():
        raise DataError(f"{path}: missing; run the stage that writes '{dataset}' for round {round_id} first")
    table = pq.read_table(path)
    expected = SCHEMAS[dataset]
    if table.schema.remove_metadata() != expected:
        missing = sorted(set(expected.names) - set(table.schema.names))
        raise DataError(f"{path}: schema differs from '{dataset}' v{SCHEMA_VERSION}" + (f"; missing columns {missing}" if missing else ""))
    return table


def read_rows(root: str | Path, dataset: str, round_id: int) -> list[dict]:
    return read_table(root, dataset, round_id).to_pylist()
