"""Internalized against outcome-only and oracle, at equal generated tokens, over seeds.

Usage: python scripts/bench_modes.py [--budget 70000] [--seeds 0,1,2] [--modes outcome,internalized,internalized_repair,oracle,oracle_repair]
       [--checkpoint checkpoints/round=0] [--out bench/modes] [--engine transformers] [--set section.key=value ...]

Every campaign starts from the same base policy (the committed bootstrap checkpoint) and runs
the real round stages until it has generated ``--budget`` tokens (rollouts, mining
continuations and correction samples all count). A mode label is a params ``mode`` plus the
parameters that make it (rlint.bench_modes.MODE_LABELS): ``internalized_repair``,
``internalized_repair_refined`` (the repairer also trained on its own attempts,
``credit.repairer_weight: 1``) and ``oracle_repair`` are the repair family (``mine.strategy:
repair``, ``credit.estimator: repair_diff``), ``oracle`` the search family's oracle. Writes to ``--out``:
- ``records.parquet``: one row per (mode, seed, round): tokens by kind, cumulative tokens, held-out and sound accuracy,
  the share of right rollouts through a wrong step;
- ``summary.txt``: the table printed at the end; ``summary.json``: the same figures per mode (rlint.bench_modes.summary_record);
- ``accuracy_vs_tokens.png``: mean held-out accuracy against generated tokens, band = min..max over seeds;
- ``mode=<m>/seed=<s>/``: each campaign's workspace (``rlint audit --root`` reads it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rlint.bench_modes import MODE_LABELS, MODES_ORDER, plot_curves, summarize, summary_record, summary_table  # noqa: E402
from rlint.config import ENGINES  # noqa: E402


def parse_value(text: str):
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="base parameters (mode, seed and rounds are set per campaign)")
    parser.add_argument("--checkpoint", default="checkpoints/round=0", help="the base policy every campaign starts from")
    parser.add_argument("--budget", type=int, default=70_000, help="generated tokens per campaign")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--modes", default="outcome,internalized,oracle", help=f"mode labels, of {', '.join(MODES_ORDER)}")
    parser.add_argument("--out", default="bench/modes")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a parameter for every campaign")
    parser.add_argument("--set-mode", action="append", default=[], metavar="MODE:SECTION.KEY=VALUE", help="override a parameter for one mode only")
    parser.add_argument("--engine", default="transformers", choices=ENGINES,
                        help="sampling.engine of every campaign (default transformers: on the tiny embedded model it is "
                             "the faster engine, and the README's figures were measured with it)")
    parser.add_argument("--max-rounds", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1, help="campaigns run at once, in separate processes (torch threads: cores // jobs)")
    parser.add_argument("--from-records", nargs="+", type=Path, metavar="PARQUET",
                        help="do not run: summarize the --modes rows of these records.parquet files (e.g. seeds run on different machines) into --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import polars as pl

    from rlint.config import ConfigError, load_params

    base = yaml.safe_load(Path(args.params).read_text())
    load_params(Path(args.params))  # fail early on a bad base file
    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "config.json").exists():
        print(f"bench_modes: error: {checkpoint}: no checkpoint (config.json missing)", file=sys.stderr)
        return 2
    overrides, per_mode = {"sampling.engine": args.engine}, {}
    try:
        for item in args.set:
            key, _, value = item.partition("=")
            overrides[key] = parse_value(value)
        for item in args.set_mode:
            mode, _, assignment = item.partition(":")
            key, _, value = assignment.partition("=")
            per_mode.setdefault(mode, {})[key] = parse_value(value)
    except yaml.YAMLError as err:
        print(f"bench_modes: error: --set: {err}", file=sys.stderr)
        return 2
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODE_LABELS]
    if unknown and not args.from_records:
        print(f"bench_modes: error: --modes: unknown label(s) {', '.join(unknown)}; use {', '.join(MODES_ORDER)}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    started = time.monotonic()
    if args.from_records:
        records = [row for path in args.from_records for row in pl.read_parquet(path).to_dicts() if row["mode"] in modes]
        out.mkdir(parents=True, exist_ok=True)
        # files written before sound_accuracy lack its column: every key of any file, null where absent
        pl.DataFrame(records, infer_schema_length=None).write_parquet(out / "records.parquet")  # the rows this summary is computed from
        seeds = sorted({r["seed"] for r in records})
    else:
        base_eval = _base_eval(base, checkpoint, out, overrides)
        jobs = [(base, mode, seed, args.budget, str(checkpoint), base_eval, str(out / f"mode={mode}" / f"seed={seed}"), args.max_rounds,
                 {**overrides, **per_mode.get(mode, {})}, max(1, (os.cpu_count() or 1) // args.jobs)) for seed in seeds for mode in modes]
        records = []
        try:
            for recs, seconds in _run_all(jobs, args.jobs):
                records.extend(recs)
                last = [r for r in recs if r["cumulative_tokens"] <= args.budget][-1]
                print(f"{recs[0]['mode']:<20} seed {recs[0]['seed']}: {len(recs) - 1} rounds, {recs[-1]['cumulative_tokens']:,} tokens, "
                      f"accuracy {last['heldout_accuracy']:.3f} within budget, {seconds:.0f} s", flush=True)
                pl.DataFrame(records, infer_schema_length=None).write_parquet(out / "records.parquet")
        except ConfigError as err:
            print(f"bench_modes: error: {err}", file=sys.stderr)
            return 2
    summary = summarize(records, args.budget)
    table = summary_table(records, summary)
    overrides_text = ", ".join(args.set + args.set_mode) or "none"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = f"{table}\noverrides: {overrides_text}\nwall time: {time.monotonic() - started:.0f} s (jobs {args.jobs}, load average at the end {load:.1f})\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text(text)
    record = {**summary_record(records, summary), "overrides": args.set + args.set_mode, "engine": args.engine}
    (out / "summary.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    plot_curves(summary, out / "accuracy_vs_tokens.png", f"held-out accuracy vs generated tokens ({len(seeds)} seeds)")
    print(text + f"plot: {out / 'accuracy_vs_tokens.png'}")
    return 0


def _run_all(jobs: list[tuple], processes: int):
    """Yield (records, seconds) of each campaign, in the order of ``jobs``."""
    from rlint.bench_modes import campaign_job

    if processes <= 1:
        for job in jobs:
            yield campaign_job(job)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        yield from pool.imap(campaign_job, jobs)


def _base_eval(base: dict, checkpoint: Path, out: Path, overrides: dict) -> dict:
    """Evaluate metrics (held-out and sound accuracy) of the base policy, by the evaluate stage (round 0 of a scratch workspace),
    with the overrides every campaign gets (``sampling.engine`` included: the same engine scores every point)."""
    import shutil

    from rlint.bench_modes import campaign_params
    from rlint.config import load_params
    from rlint.stages import evaluate

    workspace = out / "base"
    shutil.rmtree(workspace, ignore_errors=True)
    (workspace / "checkpoints").mkdir(parents=True)
    shutil.copytree(checkpoint, workspace / "checkpoints" / "round=0")
    (workspace / "params.yaml").write_text(yaml.safe_dump(campaign_params(base, base.get("mode", "internalized"), base.get("seed", 0), 1, overrides), sort_keys=False))
    return evaluate.run(load_params(workspace / "params.yaml"), 0, workspace)


if __name__ == "__main__":
    sys.exit(main())
