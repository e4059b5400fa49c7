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
import pyarrow.parquet as pq

from rlint.audit.advantages import MOMENT_COLUMNS, SUMMARY_COLUMNS, advantage_moments, token_advantage_moments
from rlint.audit.inputs import DATASETS, ROUND as ROUND_DTYPE, AuditError, Inputs
from rlint.data import write_atomic
from rlint.schemas import SCHEMAS

_ROUND_DIR = re.compile(r"^round=(\d+)$")
_ROUND_JSON = re.compile(r"^round=(\d+)\.json$")


def dataset_schema(dataset: str) -> pl.Schema:
    return pl.Schema(pl.from_arrow(SCHEMAS[dataset].empty_table()).schema)


def round_files(root: str | Path, dataset: str) -> dict[int, Path]:
    """round -> ``data/<dataset>/round=<k>/part-0.parquet`` for every round that has one."""
    files = {}
    for path in Path(root, "data", dataset).glob("round=*/part-0.parquet"):
        match = _ROUND_DIR.match(path.parent.name)
        if match:
            files[int(match.group(1))] = path
    return dict(sorted(files.items()))


def _scan(source: str | list[str], dataset: str) -> pl.LazyFrame:
    # columns a file lacks (an older schema) read as nulls; columns beyond the schema are ignored.
    # Every file holds its own ``round`` column, so paths are not parsed as hive partitions: a
    # workspace under a directory like ``mode=oracle/seed=0`` would otherwise add columns.
    return pl.scan_parquet(
        source, hive_partitioning=False,
        schema=dataset_schema(dataset), missing_columns="insert", extra_columns="ignore",
    )


def scan_dataset(root: str | Path, dataset: str) -> pl.LazyFrame | None:
    """All rounds of one dataset as one lazy frame; ``None`` when no round has it."""
    base = Path(root) / "data" / dataset
    if not any(base.glob("round=*/part-0.parquet")):
        return None
    return _scan(str(base / "round=*" / "part-0.parquet"), dataset)


# per-row summary columns that are never null where the credit stage wrote them (min/max are, for untrained rows)
_SUMMARY_COUNTS = ("trained_tokens", "advantage_sum", "advantage_sum_sq", "positive_tokens", "negative_tokens")


def has_advantage_summary(path: Path) -> bool:
    """Whether a train_set file holds the per-row advantage summaries (schema v3), judged from its Parquet footer.

    True when every summary column is present and its row-group statistics count no nulls; an
    older file (schema v2), or one without statistics, is read from its token lists instead.
    """
    try:
        meta = pq.read_metadata(path)
    except (OSError, ValueError):
        return False  # unreadable here: the scan that follows names the file
    arrow = meta.schema.to_arrow_schema()
    if not all(name in arrow.names for name in SUMMARY_COLUMNS):
        return False
    leaves = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    for g in range(meta.num_row_groups):
        for name in _SUMMARY_COUNTS:
            stats = meta.row_group(g).column(leaves[name]).statistics
            if stats is None or not stats.has_null_count or stats.null_count:
                return False
    return True


def file_advantage_moments(files: list[Path]) -> pl.LazyFrame | None:
    """Advantage moments per (round, kind) of these train_set files, as one lazy query.

    Files with the per-row summaries are read through those scalar columns alone; older ones
    through their token lists.
    """
    summarized = [p for p in files if has_advantage_summary(p)]
    older = [p for p in files if p not in summarized]
    parts = ([advantage_moments(_scan([str(p) for p in summarized], "train_set"))] if summarized else []) + \
            ([token_advantage_moments(_scan([str(p) for p in older], "train_set"))] if older else [])
    return pl.concat([part.cast(MOMENT_COLUMNS) for part in parts]) if parts else None


CACHE_FILE = "advantage_moments.v2.parquet"
_IDENTITY = {"file_size": pl.Int64, "file_mtime_ns": pl.Int64}


def cached_advantage_moments(root: str | Path, cache_dir: Path) -> pl.DataFrame | None:
    """The train set's per-(round, kind) advantage moments, computed only for rounds not in the cache.

    A round's entry is reused while its ``train_set`` file keeps its size and modification time
    (round outputs do not change once written; a stage that rewrites one changes both). The
    cache is ``<cache_dir>/advantage_moments.v2.parquet``; if it cannot be written the moments
    are still returned. Since the per-row summary columns it saves little; it matters for train
    sets written before them, whose token lists are then read once per round, not once per audit.
    """
    files = round_files(root, "train_set")
    if not files:
        return None
    identity = pl.DataFrame(
        {"round": list(files), "file_size": [p.stat().st_size for p in files.values()],
         "file_mtime_ns": [p.stat().st_mtime_ns for p in files.values()]},
        schema={"round": ROUND_DTYPE, **_IDENTITY},
    )
    cache_path = cache_dir / CACHE_FILE
    cached = pl.DataFrame(schema={**MOMENT_COLUMNS, **_IDENTITY})
    if cache_path.is_file():
        try:
            cached = pl.read_parquet(cache_path).cast({**MOMENT_COLUMNS, **_IDENTITY}).join(identity, on=["round", *_IDENTITY], how="semi")
        except (pl.exceptions.PolarsError, OSError):
            pass  # unreadable cache: recompute
    todo = [k for k in files if k not in set(cached["round"].to_list())]
    if todo:
        fresh = file_advantage_moments([files[k] for k in todo]).collect()
        # a round without trained tokens still gets a (null-kind) row, so it is not recomputed
        empty = pl.DataFrame({"round": [k for k in todo if k not in set(fresh["round"].to_list())]}, schema={"round": ROUND_DTYPE})
        fresh = pl.concat([fresh, empty], how="diagonal").join(identity, on="round", how="left")
        cached = pl.concat([cached, fresh.select(cached.columns)]).sort("round", "kind", nulls_last=True)
        try:
            write_atomic(cached.to_arrow(), cache_path)
        except OSError:
            pass  # a read-only workspace: the audit still works, only slower next time
    return cached.filter(pl.col("kind").is_not_null()).select(list(MOMENT_COLUMNS))


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


def workspace_inputs(root: str | Path, origin: str | None = None, cache_dir: Path | None = None) -> Inputs:
    """The inputs of a workspace; with ``cache_dir``, train-set advantage moments come from the per-round cache."""
    root = Path(root)
    if not root.is_dir():
        raise AuditError(f"{root}: no such directory")
    if cache_dir is not None:
        moments = cached_advantage_moments(root, cache_dir)
    else:
        moments = file_advantage_moments(list(round_files(root, "train_set").values()))
    return Inputs(
        frames={dataset: scan_dataset(root, dataset) for dataset in DATASETS},
        metrics=load_metrics(root), origin=origin or str(root), advantage_moments=moments,
        rounds_present={dataset: list(round_files(root, dataset)) for dataset in DATASETS},
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
def open_inputs(root: str | Path, rev: str | None = None, cache: bool = False) -> Iterator[Inputs]:
    """The audit's inputs from the workspace ``root``, or from its git revision ``rev`` through DVC.

    ``cache``: keep per-round advantage moments in ``ROOT/audit/cache`` (workspace only).
    """
    if rev is None:
        yield workspace_inputs(root, cache_dir=Path(root) / "audit" / "cache" if cache else None)
        return
    with tempfile.TemporaryDirectory(prefix="rlint-audit-") as tmp:
        export_revision(root, rev, Path(tmp))
        yield workspace_inputs(tmp, origin=f"{root}@{rev}")
