"""Versioned Parquet datasets: one folder per round, rows checked against their schema on every read.

Layout: ``data/<dataset>/round=<k>/part-0.parquet`` (zstd), rows sorted by their id column. The
schemas, the ids that tie rows together and the rules rows follow are in rlint/schemas.py.
Writes are atomic (rlint/atomic.py): a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rlint.atomic import replace_file_atomic
from rlint.schemas import ALIGNED, REWARDED, SCHEMA_VERSION, SCHEMAS, SORT_KEYS


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
    """Read one round of a dataset, checking its schema and its rows (see :func:`check_rows`)."""
    path = dataset_path(root, dataset, round_id)
    if not path.is_file():
        raise DataError(f"{path}: missing; run the stage that writes '{dataset}' for round {round_id} first")
    try:
        table = pq.read_table(path)
        table.validate(full=True)  # offsets in range, strings valid UTF-8: what a damaged file breaks
        table.schema.names  # noqa: B018  (column names decode)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: not a readable Parquet file: {reason}") from None
    expected = SCHEMAS[dataset]
    if table.schema.remove_metadata() != expected:
        missing = sorted(set(expected.names) - set(table.schema.names))
        extra = sorted(set(table.schema.names) - set(expected.names))
        wrong = [f"{f.name} is {table.schema.field(f.name).type}, expected {f.type}" for f in expected
                 if f.name in table.schema.names and table.schema.field(f.name).type != f.type]
        detail = "; ".join(filter(None, [f"missing columns {missing}" if missing else "", f"unknown columns {extra}" if extra else "",
                                         "field " + ", field ".join(wrong) if wrong else ""]))
        raise DataError(f"{path}: schema differs from '{dataset}' v{SCHEMA_VERSION}" + (f"; {detail}" if detail else ""))
    check_rows(table, dataset, round_id, path)
    return table


def _first(mask) -> int | None:
    """Index of the first true entry of a boolean array (nulls count as false), or None."""
    index = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if index < 0 else index


VOCAB_SIZE: int | None = None  # set by the CLI from the model a stage loads: token ids must stay below it


def check_rows(table: pa.Table, dataset: str, round_id: int, path: Path | str) -> None:
    """Refuse rows that no stage writes: the error names the file, the 1-based row and the field.

    Ids present, non-empty and unique; ``round`` is the file's round; integers (counts, ids,
    offsets, token ids) non-negative; floats finite; rewards 0, 1 or null; per-token lists as
    long as their tokens; step ends increasing and within the completion; token ids below
    :data:`VOCAB_SIZE` when it is set.
    """
    def fail(row: int, field: str, what: str):
        raise DataError(f"{path}: row {row + 1}: field '{field}' {what}")

    key = SORT_KEYS[dataset]
    ids = table.column(key)
    if (row := _first(pc.or_(pc.is_null(ids), pc.equal(pc.utf8_length(pc.fill_null(ids, "")), 0)))) is not None:
        fail(row, key, "is empty")
    unique = pc.unique(ids)
    if len(unique) != len(ids):
        counts = pc.value_counts(ids)
        duplicate = counts.field("values").filter(pc.greater(counts.field("counts"), 1))[0]
        first, second = pc.indices_nonzero(pc.equal(ids, duplicate))[:2].to_pylist()
        fail(second, key, f"repeats id {duplicate.as_py()!r} of row {first + 1}")
    if (row := _first(pc.not_equal(table.column("round"), round_id))) is not None:
        fail(row, "round", f"is {table.column('round')[row].as_py()}, but the file is round {round_id}")
    for field in table.schema:
        column = table.column(field.name)
        values = pc.list_flatten(column) if pa.types.is_list(field.type) else column
        parents = pc.list_parent_indices(column) if pa.types.is_list(field.type) else None
        if pa.types.is_integer(values.type):
            bad = _first(pc.less(values, 0))
            what = "is negative"
            if bad is None and VOCAB_SIZE is not None and field.name.endswith("token_ids"):
                bad = _first(pc.greater_equal(values, VOCAB_SIZE))
                what = f"has a token id beyond the model's vocabulary (config.json vocab_size={VOCAB_SIZE})"
        elif pa.types.is_floating(values.type):
            bad = _first(pc.invert(pc.is_finite(values)))
            what = "is not a finite number"
        else:
            continue
        if bad is not None:
            fail(bad if parents is None else parents[bad].as_py(), field.name, what)
    if dataset in REWARDED:
        reward = table.column("reward")
        if (row := _first(pc.and_(pc.is_valid(reward), pc.invert(pc.is_in(reward, pa.array([0.0, 1.0], pa.float32())))))) is not None:
            fail(row, "reward", f"is {reward[row].as_py()}; rewards are 1, 0 or null")
    for values, tokens in ALIGNED.get(dataset, []):
        if (row := _first(pc.not_equal(pc.list_value_length(table.column(values)), pc.list_value_length(table.column(tokens))))) is not None:
            fail(row, values, f"has {len(table.column(values)[row])} entries for {len(table.column(tokens)[row])} in '{tokens}'")
    if dataset == "rollouts":
        for row, (ends, tokens) in enumerate(zip(table.column("step_ends").to_pylist(), table.column("token_ids").to_pylist())):
            if ends and (any(b <= a for a, b in zip(ends, ends[1:])) or ends[-1] > len(tokens)):
                fail(row, "step_ends", f"must increase and stay within the {len(tokens)} completion tokens, got {ends}")


def read_rows(root: str | Path, dataset: str, round_id: int) -> list[dict]:
    return read_table(root, dataset, round_id).to_pylist()
