"""Lineage: from any id back to its prompt, rollout, round and policy version."""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from rlint.audit.inputs import ID_COLUMNS, AuditError, Inputs


_ROUND_OF_ID = re.compile(r"^r(\d+)-")


@dataclass(frozen=True)
class Link:
    """One step of a lineage chain: the dataset, the row's id, and the row (a dict of its columns)."""

    dataset: str
    id: str
    row: dict


def _find(inputs: Inputs, dataset: str, column: str, value: str, round_id: int | None) -> dict | None:
    frame = inputs.frame(dataset)
    if frame is None:
        return None
    query = frame.filter(pl.col(column) == value)
    if round_id is not None:  # ids carry their round: only that round's file is read
        query = query.filter(pl.col("round") == round_id)
    # list columns (token ids, log-probs) are not part of a lineage
    schema = frame.collect_schema()
    rows = query.select([c for c, t in schema.items() if not isinstance(t, pl.List)]).head(1).collect().to_dicts()
    return rows[0] if rows else None


def lineage(inputs: Inputs, any_id: str) -> list[Link]:
    """The chain from ``any_id`` (example, branch, continuation, failure, rollout or archive id) back to its rollout.

    Returns the links in order, the rollout last (it holds the prompt, round and policy version); a
    failure whose hard prefix was archived is preceded by its latest archive entry.
    Raises :class:`AuditError` for an id no dataset holds.
    """
    round_id = _round_of(any_id)
    start = next(
        ((ds, row) for ds, col in ID_COLUMNS.items() if (row := _find(inputs, ds, col, any_id, None if ds == "archive" else round_id))),
        None,
    )
    if start is None:
        where = ", ".join(f"{ds}.{col}" for ds, col in ID_COLUMNS.items() if inputs.frame(ds) is not None)
        raise AuditError(f"{inputs.origin}: id '{any_id}' not found in {where or 'any dataset'}")
    dataset, row = start
    chain = [Link(dataset, any_id, row)]
    while dataset != "rollouts":
        candidates = _parents(dataset, row)
        found = next(((ds, value, r) for ds, col, value in candidates if (r := _find(inputs, ds, col, value, _round_of(value)))), None)
        if found is None:
            ds, col, value = candidates[-1]
            raise AuditError(f"{inputs.origin}: {dataset} row '{chain[-1].id}' names {col} '{value}', which {ds} does not hold")
        dataset, value, row = found
        chain.append(Link(dataset, value, row))
    failure = next((link for link in chain if link.dataset == "failures"), None)
    archive = inputs.frame("archive")
    if failure is not None and archive is not None and not any(link.dataset == "archive" for link in chain):
        # the failure's hard prefix, if it was archived: its latest snapshot
        schema = archive.collect_schema()
        latest = (archive.filter(pl.col("failure_id") == failure.id).sort("round", descending=True).head(1)
                  .select([c for c, t in schema.items() if not isinstance(t, pl.List)]).collect().to_dicts())
        if latest:
            chain.insert(chain.index(failure), Link("archive", latest[0]["archive_id"], latest[0]))
    return chain


def _round_of(any_id: str) -> int | None:
    match = _ROUND_OF_ID.match(any_id)
    return int(match.group(1)) if match else None


def _parents(dataset: str, row: dict) -> list[tuple[str, str, str]]:
    """Where to look for the next link closer to the rollout: (dataset, id column, id), first found wins."""
    if dataset == "train_set":
        if row["kind"] == "branch":
            return [("branches", "branch_id", row["example_id"])]
        # a failed rollout is also a failure (same id); a right one only a rollout
        return [("failures", "failure_id", row["rollout_id"]), ("rollouts", "rollout_id", row["rollout_id"])]
    if dataset in ("branches", "continuations", "archive"):
        return [("failures", "failure_id", row["failure_id"])]
    return [("rollouts", "rollout_id", row["rollout_id"])]  # failures
