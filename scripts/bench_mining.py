"""Mining quality and cost on the embedded task, by the real rollout, mine and correct stages.

Usage: python scripts/bench_mining.py [--checkpoint checkpoints/round=0] [--prompts 64] [--samples 8]
       [--continuations M] [--threshold T] [--failures-per-problem N] [--engine transformers] [--out /tmp/rlint-bench-mining]
       [--strategies binary,linear,full,repair] [--summary bench/mining/summary.json]

Samples rollouts of the given policy once, mines the same failures three times with the same
reuse rules (binary search over steps; the linear scan that stops at the first bad prefix; the
full scan that estimates every prefix, as value-labelling methods do), corrects the
binary-search failures, and prints:
- localization accuracy: share of located first errors equal to the ground-truth first error;
- cost: continuations per failure, binary against both scans;
- correction yield: share of located failures with at least one verified corrected branch;
- a JSON summary (``--summary``): per strategy ``failures``, ``located``, ``loc_acc``,
  ``tokens_per_located`` (identification tokens per located failure) and, for repair, ``repair_success``;
- with ``repair`` among ``--strategies`` (mine.strategy repair: the policy repairs each failure),
  the same failures identified by repair, and its repair success rate;
- how the mislocated failures miss (first error placed too early or too late) and how many
  successful rollouts reach the right answer through a step the checker marks wrong: such
  errors cancel, so the prefix after them still has value > 0 and is judged recoverable.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

from rlint.atomic import write_json_atomic
from rlint.config import ENGINES, ConfigError, load_params, with_changes
from rlint.data import read_rows
from rlint.engine import EngineError, engine_name
from rlint.mining import SEARCHES
from rlint.checkpoints import CheckpointError, check_checkpoint


def _given(**options) -> dict:
    """The options given on the command line (not None); the others keep params.yaml's values."""
    return {key: value for key, value in options.items() if value is not None}


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--checkpoint", default="checkpoints/round=0")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--continuations", type=int, default=None, help="mine.continuations_per_probe (default: params.yaml)")
    parser.add_argument("--threshold", type=float, default=None, help="mine.value_threshold (default: params.yaml)")
    parser.add_argument("--failures-per-problem", type=int, default=None, help="mine.failures_per_problem (default: every failure)")
    parser.add_argument("--temperature", type=float, default=None, help="mine.temperature (default: params.yaml)")
    parser.add_argument("--engine", default="transformers", choices=ENGINES,
                        help="sampling.engine (default transformers: the engine docs/method.md's figures were measured with)")
    parser.add_argument("--out", default="/tmp/rlint-bench-mining")
    parser.add_argument("--strategies", "--searches", dest="searches", default="binary,linear,full",
                        help="comma-separated: binary, linear, full (search) and repair; binary is always run")
    parser.add_argument("--summary", default="bench/mining/summary.json", help="where the JSON summary is written")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        base = load_params(args.params)
        check_checkpoint(args.checkpoint)
        engine_name(args.engine)  # vllm where it is not installed: refused before anything is written
        params = with_changes(
            base, mode="internalized", sampling=with_changes(base.sampling, engine=args.engine),
            rollout=with_changes(base.rollout, prompts_per_round=args.prompts, samples_per_prompt=args.samples),
            # this benchmark trains nothing: continuation rows (which need mine.temperature == sampling.temperature) are off
            credit=with_changes(base.credit, continuation_weight=0.0),
            mine=with_changes(base.mine, **_given(continuations_per_probe=args.continuations, value_threshold=args.threshold,
                                                  temperature=args.temperature),
                              max_failures=None, failures_per_problem=args.failures_per_problem),
        )
    except (ConfigError, CheckpointError, EngineError) as err:
        print(f"bench_mining: {err}", file=sys.stderr)
        sys.exit(2)
    names = ["binary"] + [n for n in args.searches.split(",") if n and n != "binary"]
    if unknown := [n for n in names if n not in SEARCHES + ("repair",)]:
        print(f"bench_mining: --searches: unknown {unknown}; choose from {list(SEARCHES) + ['repair']}", file=sys.stderr)
        sys.exit(2)
    from rlint.stages import correct, mine, rollout  # torch and transformers: after the checks, so a refusal takes a second

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    roots = {name: out / name for name in names}
    for root in roots.values():
        shutil.copytree(args.checkpoint, root / "checkpoints" / "round=0")
    started = time.monotonic()
    rollout.run(params, 1, roots["binary"])
    for name in names[1:]:
        shutil.copytree(roots["binary"] / "data", roots[name] / "data")
    print(f"rollouts: {args.prompts} prompts x {args.samples} samples in {time.monotonic() - started:.1f}s")
    results = {}
    for name, root in roots.items():
        started = time.monotonic()
        if name == "repair":
            run_params = with_changes(params, mine=with_changes(params.mine, strategy="repair"),
                                      credit=with_changes(params.credit, estimator="repair_diff"))
        else:
            run_params = with_changes(params, mine=with_changes(params.mine, search=name))
        metrics = mine.run(run_params, 1, root)
        failures = read_rows(root, "failures", 1)
        results[name] = (metrics, failures, time.monotonic() - started)
    correct_metrics = correct.run(params, 1, roots["binary"])

    print(f"\nM = {params.mine.continuations_per_probe} continuations per probe, value threshold {params.mine.value_threshold}, "
          f"mining temperature {params.mine.temperature}")
    print(f"{'strategy':8s} {'failures':>8s} {'located':>8s} {'loc_acc':>8s} {'cont/failure':>13s} {'tokens/failure':>15s} "
          f"{'tokens/located':>15s} {'seconds':>8s}")
    summary = {}
    for name, (metrics, failures, seconds) in results.items():
        print(f"{name:8s} {metrics['failures']:8d} {metrics['failures_located']:8d} {metrics['localization_accuracy'] or 0:8.3f} "
              f"{metrics['continuations_per_failure']:13.2f} {metrics['mining_tokens'] / max(1, metrics['failures']):15.1f} "
              f"{metrics['mining_tokens'] / max(1, metrics['failures_located']):15.1f} {seconds:8.1f}")
        summary[name] = {"failures": metrics["failures"], "located": metrics["failures_located"], "loc_acc": metrics["localization_accuracy"],
                         "tokens_per_located": round(metrics["mining_tokens"] / metrics["failures_located"], 1) if metrics["failures_located"] else None,
                         "mining_tokens": metrics["mining_tokens"], "decided_by": _count(f["decided_by"] for f in failures)}
        if name == "repair":
            summary[name]["repair_success"] = metrics["repair_success"]
            # failures binary search left unlocated because no sample of their prompt succeeded, located here
            blind = {f["failure_id"] for f in results["binary"][1] if f["decided_by"] == "prompt_unsolved"}
            summary[name]["located_where_search_unsolved"] = sum(f["failure_id"] in blind and f["first_error_step"] is not None for f in failures)
            summary[name]["search_unsolved"] = len(blind)
    write_json_atomic(Path(args.summary), {"checkpoint": args.checkpoint, "prompts": args.prompts, "samples": args.samples,
                                           "continuations_per_probe": params.mine.continuations_per_probe, "repair_samples": params.mine.repair_samples,
                                           "repair_max_edit": params.mine.repair_max_edit, "strategies": summary})
    print(f"summary: {args.summary}")
    binary = results["binary"][0]
    for name in [n for n in names[1:] if n != "repair"]:
        print(f"\ncost ratio binary/{name} (continuations): {binary['continuations'] / max(1, results[name][0]['continuations']):.3f}", end="")
    print()
    decided, misplaced = {}, {"too early": 0, "too late": 0}
    for failure in results["binary"][1]:
        decided[failure["decided_by"]] = decided.get(failure["decided_by"], 0) + 1
        mined, true = failure["first_error_step"], failure["true_first_error_step"]
        if mined is not None and true is not None and mined != true:
            misplaced["too early" if mined < true else "too late"] += 1
    print(f"decided by: {decided}")
    rollouts = read_rows(roots["binary"], "rollouts", 1)
    right_by_wrong_steps = sum(r["reward"] == 1.0 and r["true_first_error_step"] is not None for r in rollouts)
    print(f"mislocated (binary): {misplaced}; right answers through a wrong step: {right_by_wrong_steps} of "
          f"{sum(r['reward'] == 1.0 for r in rollouts)} successful rollouts")
    print(f"correction yield: {correct_metrics['correction_yield']:.3f} ({correct_metrics['failures_corrected']} of {binary['failures_located']} located failures, "
          f"{correct_metrics['correction_samples']} extra samples)")


if __name__ == "__main__":
    main()
