"""One round of rlint on your own model and dataset, stage by stage: wall time and peak memory of each stage process.

Usage: python scripts/measure_own_model.py --model DIR --train FILE [--heldout FILE] [--out WORKSPACE]
       [--prompts 8] [--samples 4] [--eval-problems 50] [--max-new-tokens 256] [--engine auto] [--set section.key=value ...]
       python scripts/measure_own_model.py --make-dataset DIR   # a two-file word-problem dataset (train, heldout) to try it on

Builds a workspace (the repository's dvc.yaml, a params.yaml for a dataset task with the model's
chat template), then runs ``rlint input``, ``bootstrap`` and round 1's eight stages in order, each
as its own process under ``/usr/bin/time -v`` (what ``dvc repro`` would run). Prints a table and
writes ``WORKSPACE/measure.json``: per stage ``seconds`` and ``peak_rss_mb``, and the round's metrics.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rlint.inputs import declared_inputs  # noqa: E402
from rlint.stage_graph import BASE_STAGES, ROUND_STAGES, stage  # noqa: E402


def make_dataset(out: Path, train: int = 400, heldout: int = 100, seed: int = 0) -> None:
    """Two-step word problems with integer answers, GSM8K's columns (question, answer ending in ``#### N``)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    names = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay"]
    things = ["apples", "books", "coins", "pencils", "stickers", "shells"]
    rows = []
    for _ in range(train + heldout):
        name, thing = rng.choice(names), rng.choice(things)
        a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 9)
        question = f"{name} has {a} {thing}. A friend gives {name} {b} more. Then {name} buys {c} times as many as that. How many {thing} did {name} buy?"
        rows.append({"question": question, "answer": f"{name} has {a} + {b} = {a + b}.\n{name} buys {c} * {a + b} = {c * (a + b)}.\n#### {c * (a + b)}"})
    for name, part in (("train.jsonl", rows[:train]), ("heldout.jsonl", rows[train:])):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    print(f"wrote {out / 'train.jsonl'} ({train}) and {out / 'heldout.jsonl'} ({heldout})")


def timed(command: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MB, exit code, output tail) of one process under /usr/bin/time -v."""
    started = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-v", *command], cwd=cwd, capture_output=True, text=True)
    seconds = time.monotonic() - started
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return seconds, int(match.group(1)) / 1024 if match else float("nan"), done.returncode, (done.stdout + done.stderr)[-3000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-dataset", type=Path, metavar="DIR")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--train", type=Path)
    parser.add_argument("--heldout", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/own-model"))
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--eval-problems", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    if args.make_dataset:
        make_dataset(args.make_dataset)
        return 0
    if not (args.model and args.train):
        parser.error("--model and --train are required (or --make-dataset DIR)")
    ws = args.out.resolve()
    if ws.exists():
        shutil.rmtree(ws)
    (ws / "data" / "inputs").mkdir(parents=True)
    shutil.copy(REPO / "dvc.yaml", ws / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    train, heldout, model = str(args.train.resolve()), str(args.heldout.resolve()) if args.heldout else None, str(args.model.resolve())
    params["task"].update({"name": "dataset", "path": train, "heldout_path": heldout, "question_field": "question", "answer_field": "answer",
                           "prompt_template": "{question}", "chat_template": True, "step_delimiter": "\n",
                           "system_prompt": "Solve the problem step by step, one step per line. End with '#### <answer>'."})
    params["bootstrap"].update({"model_path": model, "eval_problems": args.eval_problems})
    params["rollout"].update({"prompts_per_round": args.prompts, "samples_per_prompt": args.samples})
    params["sampling"].update({"max_new_tokens": args.max_new_tokens, "engine": args.engine})
    params["evaluate"]["problems"] = args.eval_problems
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        params[section][name] = yaml.safe_load(value)
    params["inputs"] = declared_inputs(train, heldout, model)  # what rlint requires for DVC to version them
    params["rounds"] = {"r1": {"id": 1, "prev": 0}}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rlint = str(Path(sys.executable).parent / "rlint")
    commands = [(f"input@{key}", [rlint, "input", "--key", key]) for key in params["inputs"]]
    commands += [(name, [rlint, *stage(name).cmd.split()[1:]]) for name in BASE_STAGES]
    commands += [(f"{name}@r1", [rlint, *stage(name).cmd.format(round=1).split()[1:]]) for name in ROUND_STAGES]
    results = {}
    print(f"{'stage':<28}{'seconds':>9}{'peak MB':>10}")
    for name, command in commands:
        seconds, peak, code, tail = timed(command, ws)
        results[name] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak)}
        print(f"{name:<28}{seconds:>9.1f}{peak:>10.0f}", flush=True)
        if code != 0:
            print(f"{name} failed with exit code {code}:\n{tail}", file=sys.stderr)
            return code
        lines = [line for line in tail.splitlines() if " INFO " in line or " WARNING " in line]
        for line in lines[-3:]:
            print(f"    {line[:220]}")
    metrics = {name: json.loads(p.read_text()) for name in ("evaluate", "rollout", "mine", "optimize")
               for p in [ws / "metrics" / name / "round=1.json"] if p.exists()}
    metrics["base"] = json.loads((ws / "metrics" / "evaluate" / "round=0.json").read_text())
    total = sum(r["seconds"] for r in results.values())
    (ws / "measure.json").write_text(json.dumps({"stages": results, "total_seconds": round(total, 1), "metrics": metrics,
                                                  "params": {"prompts": args.prompts, "samples": args.samples, "eval_problems": args.eval_problems,
                                                             "max_new_tokens": args.max_new_tokens, "engine": args.engine}}, indent=2) + "\n")
    print(f"{'total':<28}{total:>9.1f}\nheld-out: base {metrics['base'].get('heldout_accuracy')}, round 1 "
          f"{metrics.get('evaluate', {}).get('heldout_accuracy')}; {ws / 'measure.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
