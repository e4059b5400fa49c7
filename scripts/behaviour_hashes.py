"""Hashes of every data and checkpoint file of small two-round runs, for refactors that must not change behaviour.

A tiny bootstrap from scratch (tests/conftest.py's sizes), then four small workspaces that start from
the committed base checkpoint and run every stage of two rounds through ``rlint.cli.main`` in this
process: search (archive replays on), repair with the repairer trained, outcome with ``info_gain``
credit, and the oracle repair. Prints one sha256 per file and, with
``--compare FILE``, the files whose bytes differ from a record written before (exit 1 if any)::

    python scripts/behaviour_hashes.py --out /tmp/before.json          # on the old code
    python scripts/behaviour_hashes.py --compare /tmp/before.json      # on the new code

Metrics JSON files are left out: they hold timings. Run from the checkout whose code is tested
(PYTHONPATH=. where rlint is installed from another checkout); the code, params.yaml and base
checkpoint are those of the checkout on PYTHONPATH (this script's own when it is unset).

A refactor allowed to rename a Parquet column keeps the old files and compares by content::

    cd OLD && PYTHONPATH=OLD python NEW/scripts/behaviour_hashes.py --keep /tmp/before     # old code, files kept
    PYTHONPATH=. python scripts/behaviour_hashes.py --compare /tmp/before --rename OLD_COLUMN=NEW_COLUMN --rename-in rollouts,archive

With ``--compare DIR`` every file is compared by its bytes, except the Parquet tables of the datasets
named by ``--rename-in``: those are read, the old table's columns renamed by ``--rename``, and
compared by schema (metadata included) and content.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO))

from rlint.stage_graph import ROUND_STAGES  # noqa: E402

BASE = {"bootstrap": {"diagnostic_prompts": 2, "eval_problems": 8}, "rollout": {"prompts_per_round": 16, "samples_per_prompt": 4},
        "archive": {"replay_share": 0.5}, "mine": {"repair_samples": 2}}
ROUNDS = {"sampling": {"max_new_tokens": 64}, "evaluate": {"problems": 16}}
CONFIGS = {
    "search": {},
    "repair": {"mine": {"strategy": "repair", "repair_samples": 2, "repair_max_edit": 1.0, "repair_temperature": 1.0},
               "credit": {"estimator": "repair_diff", "repairer_weight": 0.5}},
    "outcome_info_gain": {"mode": "outcome", "credit": {"estimator": "info_gain"}},
    "oracle_repair": {"mode": "oracle", "mine": {"strategy": "repair", "repair_samples": 2}, "credit": {"estimator": "repair_diff"}},
}


def merged(*layers: dict) -> dict:
    out: dict = {}
    for layer in layers:
        for key, value in layer.items():
            out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def file_hashes(ws: Path) -> dict[str, str]:
    return {str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
            for top in ("data", "checkpoints") for p in sorted((ws / top).rglob("*")) if p.is_file() and p.name != "README.md"}


def same_content(old: Path, new: Path, renames: dict[str, str]) -> bool:
    """Two Parquet files hold the same table once the old one's columns are renamed by ``renames`` (schema metadata included)."""
    import pyarrow.parquet as pq

    before, after = pq.read_table(old), pq.read_table(new)
    metadata = before.schema.metadata  # rename_columns drops it
    before = before.rename_columns([renames.get(name, name) for name in before.column_names])
    return metadata == after.schema.metadata and before.equals(after)


def compare_files(kept: Path, now: dict[str, Path], renames: dict[str, str], renamed_tables: set[str]) -> list[str]:
    """Keys whose file differs from the one kept under ``kept``: by content for tables of ``renamed_tables``, else by bytes."""
    old = {key: kept / key for key in kept_keys(kept)}
    differ = []
    for key in sorted(old.keys() | now.keys()):
        if key not in old or key not in now:
            differ.append(f"{key} ({'missing now' if key not in now else 'new'})")
            continue
        parts = Path(key).parts  # <workspace>/data/<dataset>/round=<k>/part-0.parquet
        if len(parts) > 3 and parts[1] == "data" and parts[2] in renamed_tables and key.endswith(".parquet"):
            if not same_content(old[key], now[key], renames):
                differ.append(f"{key} (other content after renaming)")
        elif old[key].read_bytes() != now[key].read_bytes():
            differ.append(f"{key} (other bytes)")
    return differ


def kept_keys(kept: Path) -> set[str]:
    return {str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file()}


def run(cli_main, ws: Path, *args: str) -> None:
    code = cli_main(["--root", str(ws), *args])
    if code != 0:
        raise SystemExit(f"{ws.name}: rlint {' '.join(args)} exited {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the hashes here (JSON)")
    parser.add_argument("--compare", type=Path, help="compare with hashes written before (JSON) or files kept before (a --keep folder); exit 1 on any difference")
    parser.add_argument("--keep", type=Path, help="copy every hashed file into this folder, for a later --compare by content")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW", help="a column renamed since the kept files (with --compare DIR)")
    parser.add_argument("--rename-in", default="", metavar="DATASETS", help="comma-separated datasets whose tables --rename applies to, e.g. rollouts,archive")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    renames = dict(item.split("=", 1) for item in args.rename)
    renamed_tables = {name for name in args.rename_in.split(",") if name}
    if (renames or renamed_tables) and not (renames and renamed_tables and args.compare and args.compare.is_dir()):
        parser.error("--rename and --rename-in go together, with --compare of a --keep folder")

    import rlint.cli
    from rlint.cli import main as cli_main
    from tests.conftest import TINY_PARAMS, make_workspace

    code = Path(rlint.cli.__file__).resolve().parent.parent  # the checkout whose code runs
    print(f"code from {code}")
    hashes: dict[str, str] = {}
    files: dict[str, Path] = {}
    real_bootstrap = yaml.safe_load((code / "params.yaml").read_text())["bootstrap"]
    with tempfile.TemporaryDirectory(prefix="rlint-behaviour-") as tmp:
        ws = make_workspace(Path(tmp) / "bootstrap", merged(TINY_PARAMS, BASE), rounds=0)
        run(cli_main, ws, "bootstrap")  # a tiny one from scratch: the SFT, diagnostics and evaluation code
        hashes.update({f"bootstrap/{path}": digest for path, digest in file_hashes(ws).items()})
        files.update({f"bootstrap/{path}": ws / path for path in file_hashes(ws)})
        for name, overrides in CONFIGS.items():  # rounds from the committed base, which solves some problems
            ws = make_workspace(Path(tmp) / name, merged(TINY_PARAMS, BASE, {"bootstrap": real_bootstrap}, ROUNDS, overrides), rounds=args.rounds)
            shutil.copytree(code / "checkpoints" / "round=0", ws / "checkpoints" / "round=0")
            run(cli_main, ws, "archive", "--round", "0")
            for round_id in range(1, args.rounds + 1):
                for stage in ROUND_STAGES:
                    run(cli_main, ws, stage, "--round", str(round_id))
            hashes.update({f"{name}/{path}": digest for path, digest in file_hashes(ws).items() if not path.startswith("checkpoints/round=0/")})
            files.update({f"{name}/{path}": ws / path for path in file_hashes(ws) if not path.startswith("checkpoints/round=0/")})
        print(f"{len(hashes)} files hashed over {len(CONFIGS)} workspaces")
        if args.keep:
            for key, path in files.items():
                (args.keep / key).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, args.keep / key)
            print(f"kept {len(files)} files under {args.keep}")
        if args.compare and args.compare.is_dir():
            differ = compare_files(args.compare, files, renames, renamed_tables)
            for line in differ:
                print(f"differs: {line}")
            print(f"{len(differ)} of {len(files.keys() | kept_keys(args.compare))} files differ (Parquet of {', '.join(sorted(renamed_tables)) or 'no dataset'} by content)")
            return 1 if differ else 0
    if args.out:
        args.out.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = sorted(k for k in before.keys() | hashes.keys() if before.get(k) != hashes.get(k))
        for key in differ:
            print(f"differs: {key} ({'missing now' if key not in hashes else 'new' if key not in before else 'other bytes'})")
        print(f"{len(differ)} of {len(before.keys() | hashes.keys())} files differ")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
