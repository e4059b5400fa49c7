"""Where the audit reads from: a workspace on disk, or a git revision of one through DVC.

A workspace is scanned lazily (``pl.scan_parquet`` over ``data/<dataset>/round=*/part-0.parquet``
with hive partitioning and the dataset's explicit schema). A git revision is read with DVC's
Python API (``DVCFileSystem``: git-tracked files from git, DVC outputs from the DVC cache): its
round files are copied to a temporary directory, which is then scanned the same way.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow as pa

from rlint.audit import DATASETS, AuditError, Inputs
from rlint.data import SCHEMAS

# The archive of hard prefixes (written by the mining/correction side): the columns the audit
# relies on, used until rlint/data.py defines the dataset's schema.
ARCHIVE_SCHEMA = pa.schema([
    ("archive_id", pa.string()),
    ("round", pa.int32()),  # snapshot: the archive after this round
    ("origin_round", pa.int32()),
    ("problem_id", pa.string()),
    ("failure_id", pa.string()),
    ("prefix_steps", pa.int32()),
    ("status", pa.string()),  # "open" | "solved"
    ("solved_round", pa.int32()),  # null while open
    ("replays", pa.int32()),
])

_ROUND_DIR = re.compile(r"^round=(\d+)$")
_ROUND_JSON = re.compile(r"^round=(\d+)\.json$")


def dataset_schema(dataset: str) -> pl.Schema:
    schema = SCHEMAS.get(dataset) or (ARCHIVE_SCHEMA if dataset == "archive" else None)
    return pl.Schema(pl.from_arrow(schema.empty_table()).schema) if schema is not None else None


def scan_dataset(root: str | Path, dataset: str) -> pl.LazyFrame | None:
    """All rounds of one dataset as one lazy frame; ``None`` when no round has it.

    Columns a file lacks (an older schema) read as nulls; columns it has beyond the schema are ignored.
    """
    base = Path(root) / "data" / dataset
    if not any(base.glob("round=*/part-0.parquet")):
        return None
    return pl.scan_parquet(
        str(base / "round=*" / "part-0.parquet"), hive_partitioning=True, hive_schema={"round": pl.Int32},
        schema=dataset_schema(dataset), missing_columns="insert", extra_columns="ignore",
    )


def load_metrics(root: str | Path) -> dict[str, dict[int, dict]]:
    """``metrics/<stage>/round=<k>.json`` as {stage: {k: metrics}}."""
    out: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(root, "metrics").glob("*/round=*.json")):
        match = _ROUND_JSON.match(path.name)
        if not match:
            continue
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise AuditError(f"{path}: not valid JSON: {err}") from None
        if not isinstance(payload, dict):
            raise AuditError(f"{path}: expected a JSON object")
        out.setdefault(path.parent.name, {})[int(match.group(1))] = payload
    return out


def workspace_inputs(root: str | Path, origin: str | None = None) -> Inputs:
    root = Path(root)
    if not root.is_dir():
        raise AuditError(f"{root}: no such directory")
    return Inputs(
        frames={dataset: scan_dataset(root, dataset) for dataset in DATASETS},
        metrics=load_metrics(root), origin=origin or str(root),
    )


def export_revision(root: str | Path, rev: str, target: Path) -> None:
    """Copy the round files (Parquet and metrics JSON) of git revision ``rev`` of ``root`` into ``target``."""
    from dvc.api import DVCFileSystem
    from dvc.exceptions import DvcException

    try:
        fs = DVCFileSystem(str(root), rev=rev)
        fs.ls("/", detail=False)
    except (DvcException, OSError, ValueError) as err:
        raise AuditError(f"{root}: cannot read git revision '{rev}' through DVC: {err}".splitlines()[0]) from None
    wanted = [(f"data/{ds}", "part-0.parquet", _ROUND_DIR) for ds in DATASETS]
    wanted += [(f"metrics/{Path(p).name}", None, _ROUND_JSON) for p in _ls(fs, "metrics")]
    for folder, inner, pattern in wanted:
        for entry in _ls(fs, folder):
            name = Path(entry).name
            if not pattern.match(name):
                continue
            source = f"{folder}/{name}" + (f"/{inner}" if inner else "")
            if inner and not fs.exists(source):
                continue
            local = target / source
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                fs.get_file(source, str(local))
            except (DvcException, OSError) as err:
                raise AuditError(f"{root}@{rev}: {source}: cannot read it (not in the DVC cache? try `dvc fetch`): {err}".splitlines()[0]) from None


def _ls(fs, folder: str) -> list[str]:
    return sorted(fs.ls(folder, detail=False)) if fs.isdir(folder) else []


@contextmanager
def open_inputs(root: str | Path, rev: str | None = None) -> Iterator[Inputs]:
    """The audit's inputs from the workspace ``root``, or from its git revision ``rev`` through DVC."""
    if rev is None:
        yield workspace_inputs(root)
        return
    with tempfile.TemporaryDirectory(prefix="rlint-audit-") as tmp:
        export_revision(root, rev, Path(tmp))
        yield workspace_inputs(tmp, origin=f"{root}@{rev}")
