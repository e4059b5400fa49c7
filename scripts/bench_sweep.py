"""Every mode at several difficulty levels, at equal generated tokens: where internalized supervision pays.

Usage: python scripts/bench_sweep.py --level NAME:section.key=value,... [--level ...] [--modes outcome,internalized,oracle,oracle_repair]
       [--seeds 0,1,2,3,4] [--budget 70000] [--params params.yaml] [--out bench/sweep] [--jobs 2] [--engine transformers]
       [--set section.key=value ...] [--from-records bench/sweep/records.parquet [LEVEL=bench/modes/records.parquet ...]]
       [--base LEVEL=metrics/evaluate/round=0.json]

Each level's overrides (values without commas) apply to its base policy and to its campaigns. Per level:
the bootstrap stage trains the level's base in ``--out/level=<name>/bootstrap`` (reused when that
workspace's params.yaml is unchanged and its checkpoint exists), and then every (mode, seed)
campaign runs as in scripts/bench_modes.py from that base. Writes to ``--out``:
- ``records.parquet``: bench_modes' records with a ``level`` column (what the summary is computed from);
- ``summary.json``: per level and mode ``final_acc_mean``, ``final_acc_std``, ``sound_acc_mean``,
  ``tokens_to_outcome_final_share``, ``seeds`` (and the rest of bench_modes' summary record), and each
  level's base diagnostics; ``summary.txt``: the table printed at the end;
- ``sweep.png``: final accuracy, sound accuracy and tokens to outcome's final against level, per mode.

``--from-records`` summarizes records without running: a ``LEVEL=PATH`` entry labels records that
have no ``level`` column (scripts/bench_modes.py's, run with the same seeds, budget and modes on the
default parameters, are the ``default`` level), and ``--base LEVEL=PATH`` gives a level's base
metrics where its bootstrap workspace is not under ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rlint.bench_sweep import parse_level, plot_sweep, sweep_summary, sweep_table  # noqa: E402
from rlint.config import ENGINES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="base parameters of every level")
    parser.add_argument("--level", action="append", default=[], metavar="NAME:SECTION.KEY=VALUE,...", help="a difficulty level (repeat; in order)")
    parser.add_argument("--modes", default="outcome,internalized,oracle,oracle_repair")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--budget", type=int, default=70_000, help="generated tokens per campaign")
    parser.add_argument("--out", default="bench/sweep")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a parameter of every campaign (not the bases)")
    parser.add_argument("--engine", default="transformers", choices=ENGINES, help="sampling.engine of every campaign")
    parser.add_argument("--max-rounds", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1, help="campaigns run at once, in separate processes (torch threads: cores // jobs)")
    parser.add_argument("--from-records", nargs="+", metavar="[LEVEL=]PARQUET", help="do not run: summarize these records (levels from --level or the records)")
    parser.add_argument("--base", action="append", default=[], metavar="LEVEL=JSON", help="with --from-records: a level's base metrics file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import polars as pl

    from rlint.config import ConfigError

    try:
        common = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.set)}
        levels = [(name, {key: yaml.safe_load(value) for key, value in overrides.items()}) for name, overrides in map(parse_level, args.level)]
    except (ValueError, yaml.YAMLError) as err:
        print(f"bench_sweep: error: {err}", file=sys.stderr)
        return 2
    from rlint.bench_modes import MODE_LABELS

    unknown = [m for m in args.modes.split(",") if m not in MODE_LABELS]
    if unknown:
        print(f"bench_sweep: error: --modes: unknown {', '.join(unknown)}; use {', '.join(MODE_LABELS)}", file=sys.stderr)
        return 2
    if len({name for name, _ in levels}) != len(levels):
        print("bench_sweep: error: --level names must differ", file=sys.stderr)
        return 2
    out, modes, seeds = Path(args.out), args.modes.split(","), [int(s) for s in args.seeds.split(",")]
    started = time.monotonic()
    bases = {}
    if args.from_records:
        records = []
        for entry in args.from_records:
            label, sep, path = ("", "", entry) if Path(entry).exists() else entry.partition("=")  # a path may hold "=" (level=x/)
            rows = pl.read_parquet(path).to_dicts()
            if sep and any("level" in row for row in rows):
                print(f"bench_sweep: error: --from-records {entry}: these records have a level column already", file=sys.stderr)
                return 2
            if not sep and rows and "level" not in rows[0]:
                print(f"bench_sweep: error: --from-records {entry}: no level column; give LEVEL={path}", file=sys.stderr)
                return 2
            records.extend({**row, "level": label} if sep else row for row in rows if row["mode"] in modes)
        names = [name for name, _ in levels] or list(dict.fromkeys(r["level"] for r in records))
        seeds = sorted({r["seed"] for r in records})  # what the records hold, not --seeds
        given = dict(item.split("=", 1) for item in args.base)
        for name in names:
            metrics = Path(given[name]) if name in given else out / f"level={name}" / "bootstrap" / "metrics" / "evaluate" / "round=0.json"
            bases[name] = json.loads(metrics.read_text()) if metrics.exists() else None
    else:
        if not levels:
            print("bench_sweep: error: give at least one --level", file=sys.stderr)
            return 2
        from bench_modes import _base_eval, _run_all

        base_text = yaml.safe_load(Path(args.params).read_text())
        records, names = [], []
        try:
            params_of = {name: _with_overrides(base_text, overrides) for name, overrides in levels}
            for name, level_params in params_of.items():
                load_params_text(level_params, name)  # refuse a bad level before any training
            for name, level_params in params_of.items():
                checkpoint, bases[name] = bootstrap_level(level_params, out / f"level={name}" / "bootstrap")
                campaign_overrides = {"sampling.engine": args.engine, **common}
                base_eval = _base_eval(level_params, checkpoint, out / f"level={name}", campaign_overrides)
                jobs = [(level_params, mode, seed, args.budget, str(checkpoint), base_eval, str(out / f"level={name}" / f"mode={mode}" / f"seed={seed}"),
                         args.max_rounds, campaign_overrides, max(1, (os.cpu_count() or 1) // args.jobs)) for seed in seeds for mode in modes]
                for recs, seconds in _run_all(jobs, args.jobs):
                    records.extend({**r, "level": name} for r in recs)
                    last = [r for r in recs if r["cumulative_tokens"] <= args.budget][-1]
                    print(f"{name:<10}{recs[0]['mode']:<20} seed {recs[0]['seed']}: {len(recs) - 1} rounds, accuracy {last['heldout_accuracy']:.3f} "
                          f"within budget, {seconds:.0f} s", flush=True)
                    out.mkdir(parents=True, exist_ok=True)
                    pl.DataFrame(records, infer_schema_length=None).write_parquet(out / "records.parquet")
                names.append(name)
        except ConfigError as err:
            print(f"bench_sweep: error: {err}", file=sys.stderr)
            return 2
    summary = sweep_summary(records, args.budget, names)
    summary["bases"], summary["level_order"] = bases, names
    summary["level_overrides"] = dict(levels)
    summary["overrides"], summary["engine"] = args.set, args.engine
    table = sweep_table(summary)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    timing = (f"summarized from {', '.join(args.from_records)}" if args.from_records
              else f"wall time: {time.monotonic() - started:.0f} s (jobs {args.jobs}, load average at the end {load:.1f})")
    text = f"{table}\n{_bases_table(bases)}\n{timing}\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text(text)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    plot_sweep(summary, out / "sweep.png", f"modes by level at {args.budget:,} generated tokens ({len(seeds)} seeds)")
    print(text + f"plot: {out / 'sweep.png'}")
    return 0


def _with_overrides(base: dict, overrides: dict) -> dict:
    from rlint.bench_modes import campaign_params

    params = campaign_params(base, base.get("mode", "internalized"), base.get("seed", 0), 0, overrides)
    params["rounds"] = {}
    return params


def load_params_text(params: dict, name: str):
    """Check a level's parameters (rlint.config.load_params on a scratch copy): a bad level is refused up front, nothing written."""
    import tempfile

    from rlint.config import ConfigError, load_params

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "params.yaml"
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        try:
            return load_params(path)
        except ConfigError as err:
            raise ConfigError(f"level {name}: {str(err).replace(str(path) + ': ', '')}") from None


def bootstrap_level(params: dict, workspace: Path) -> tuple[Path, dict]:
    """The level's base policy by the bootstrap stage in ``workspace`` (reused when its params.yaml is unchanged); (checkpoint, its metrics)."""
    from rlint.config import load_params
    from rlint.stages import bootstrap

    text = yaml.safe_dump(params, sort_keys=False)
    checkpoint, metrics = workspace / "checkpoints" / "round=0", workspace / "metrics" / "evaluate" / "round=0.json"
    stamp = workspace / "params.sha256"
    digest = hashlib.sha256(text.encode()).hexdigest()
    if not (checkpoint.exists() and metrics.exists() and stamp.exists() and stamp.read_text() == digest):
        workspace.mkdir(parents=True, exist_ok=True)
        (workspace / "params.yaml").write_text(text)
        bootstrap.run(load_params(workspace / "params.yaml"), workspace)
        stamp.write_text(digest)
    return checkpoint, json.loads(metrics.read_text())


def _bases_table(bases: dict) -> str:
    lines = ["bases (greedy held-out accuracy; samples at the sampling temperature):"]
    for name, metrics in bases.items():
        if not metrics:
            lines.append(f"  {name}: no base metrics")
            continue
        diag = metrics.get("base_diagnostics") or {}
        lines.append(f"  {name}: heldout {metrics.get('heldout_accuracy')}, sound {metrics.get('sound_accuracy')}, "
                     f"sample accuracy {diag.get('sample_accuracy')}, groups with no right sample {diag.get('no_right_sample_share')}, "
                     f"right through a wrong step {diag.get('right_through_wrong_share')}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
