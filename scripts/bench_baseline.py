"""rlint's outcome-only GRPO against TRL's GRPOTrainer: which of the remaining differences matter.

Usage: python scripts/bench_baseline.py [--seeds 0,1,2,3,4] [--budget 70000] [--jobs 2] [--out bench/baseline/ablations]
       [--variants base,carry,...] [--params params.yaml] [--table-only]

Each variant changes one setting of rlint's outcome mode towards what TRL 1.16's GRPOTrainer does
(docs/method.md, "Against TRL's GRPOTrainer"), everything else as in ``--params``; ``trl`` changes
all of them. Every variant runs ``scripts/bench_modes.py --modes outcome`` over the same seeds and
budget into ``--out/<variant>/`` (records.parquet, summary.json). Then the table: per variant, final
held-out accuracy (mean, sample std, standard error over seeds) and its difference from ``base``
with the standard error of the difference, unpaired (``sqrt(sem_v^2 + sem_base^2)``) and paired by
seed (the same seed draws the same prompts in both). Written to ``--out/summary.json`` and
``--out/summary.txt``; ``--table-only`` only rebuilds them from the variants' records.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# one setting each, towards TRL's GRPOTrainer, from the settings before the comparison (a fresh
# AdamW each round, a new minibatch order each epoch: params.yaml's defaults since carry and
# same_minibatches were measured to help are set back for every variant); "base" is those settings
BEFORE = ["optimize.carry_optimizer_state=false", "optimize.reshuffle_epochs=true"]
VARIANTS = {
    "base": [],
    "carry": ["optimize.carry_optimizer_state=true"],  # TRL keeps one AdamW for the whole run
    "sample_std": ["credit.group_std=sample", "credit.epsilon=1.0e-4"],  # TRL: sample std + 1e-4
    "same_minibatches": ["optimize.reshuffle_epochs=false"],  # TRL shuffles a generation batch once
    "recompute": ["optimize.old_logprobs=recompute"],  # TRL recomputes old log-probs with a forward pass
}
VARIANTS["trl"] = VARIANTS["carry"] + VARIANTS["sample_std"] + VARIANTS["same_minibatches"] + VARIANTS["recompute"]


def variant_row(name: str, summary: dict, base: dict | None) -> dict:
    """One table row from a variant's summary.json (and base's, for the differences)."""
    outcome = summary["modes"]["outcome"]
    row = {"variant": name, "settings": VARIANTS.get(name, []), "seeds": outcome["seeds"], "final_acc_mean": outcome["final_acc_mean"],
           "final_acc_std": outcome["final_acc_std"], "final_acc_sem": outcome["final_acc_sem"], "final_acc_per_seed": outcome["final_acc_per_seed"],
           "rounds_mean": outcome["rounds_mean"]}
    if base is not None and name != "base":
        b = base["modes"]["outcome"]
        row["diff_vs_base"] = outcome["final_acc_mean"] - b["final_acc_mean"]
        row["diff_se"] = float(np.hypot(outcome["final_acc_sem"], b["final_acc_sem"]))
        if outcome["seeds"] == b["seeds"] and len(b["seeds"]) > 1:
            paired = np.array(outcome["final_acc_per_seed"]) - np.array(b["final_acc_per_seed"])
            row["diff_se_paired"] = float(paired.std(ddof=1) / np.sqrt(len(paired)))
    return row


def table_text(rows: list[dict], budget: int) -> str:
    lines = [f"outcome mode, final held-out accuracy at {budget:,} generated tokens (std, sem over seeds; diff vs base ± its se)",
             f"{'variant':<18}{'seeds':>6}{'rounds':>8}{'final_acc':>11}{'std':>7}{'sem':>7}{'diff':>9}{'se':>7}{'se_paired':>11}"]
    for r in rows:
        diff = f"{r['diff_vs_base']:>+9.3f}{r['diff_se']:>7.3f}" if "diff_vs_base" in r else f"{'-':>9}{'-':>7}"
        paired = f"{r['diff_se_paired']:>11.3f}" if "diff_se_paired" in r else f"{'-':>11}"
        lines.append(f"{r['variant']:<18}{len(r['seeds']):>6}{r['rounds_mean']:>8.1f}{r['final_acc_mean']:>11.3f}{r['final_acc_std']:>7.3f}"
                     f"{r['final_acc_sem']:>7.3f}{diff}{paired}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--budget", type=int, default=70_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="bench/baseline/ablations")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--table-only", action="store_true", help="do not run: rebuild the table from --out/<variant>/summary.json")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"bench_baseline: error: --variants: unknown {', '.join(unknown)}; use {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not args.table_only:
        import bench_modes

        for name in names:
            argv_v = ["--params", args.params, "--modes", "outcome", "--seeds", args.seeds, "--budget", str(args.budget), "--jobs", str(args.jobs),
                      "--out", str(out / name)] + [f"--set={s}" for s in BEFORE + VARIANTS[name]]
            print(f"== {name}: {' '.join(VARIANTS[name]) or '(params as they are)'}", flush=True)
            if bench_modes.main(argv_v) != 0:
                return 2
    summaries = {n: json.loads((out / n / "summary.json").read_text()) for n in names if (out / n / "summary.json").exists()}
    rows = [variant_row(n, s, summaries.get("base")) for n, s in summaries.items()]
    text = table_text(rows, args.budget)
    (out / "summary.json").write_text(json.dumps({"budget": args.budget, "variants": rows}, indent=2) + "\n")
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
