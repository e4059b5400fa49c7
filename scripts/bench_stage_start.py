"""Stage start-up: how long each stage process of a round takes before it does its own work.

On a tiny workspace (the tiny random Llama of tests/conftest.py as ``bootstrap.model_path``,
the sizes of tests/integration/test_faults.py, ``sampling.engine: transformers``, one round),
after one ``dvc repro`` of the whole round (the warm-up: files cached, bytecode compiled), each
stage of round 1 is run in order, upstream first, ``--repeats`` times:

- ``rlint <stage> --round 1`` as dvc.yaml's command, in the workspace: the process's wall time and
  its **start-up**, from process start to the first line of the stage's own work. That moment is
  the CLI's call of ``rlint.stages.<stage>.run``; the CLI logs it (``work starts X s after process
  start``, rlint/cli.py ``log_work_start``), measured against the process's start time in
  ``/proc/self/stat`` (10 ms ticks, monotonic). Interpreter start, imports, parameter checks,
  input checks and checkpoint verification are start-up; what the stage's ``run`` imports or
  loads itself (the model) is work;
- ``dvc repro -f -s <stage>@r1`` end to end: the same process plus DVC's bookkeeping (reading
  dvc.yaml and dvc.lock, hashing deps and outputs, writing the lock);
- once, ``python -X importtime`` of the stage command: the heavy packages it imports and their
  cumulative import time.

Medians over the repeats are printed as a table and merged under ``--label`` into ``--out``
(default bench/round/stage_start.json), so runs on two checkouts (``before``, ``after``) sit side
by side. The stage code is this script's checkout (PYTHONPATH), whichever ``rlint`` is on PATH::

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_stage_start.py --label after [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from rlint.stage_graph import ROUND_STAGES  # noqa: E402

# the sizes of tests/integration/test_faults.py's workspaces
OVERRIDES = {"bootstrap": {"eval_problems": 4}, "rollout": {"prompts_per_round": 3, "samples_per_prompt": 3}, "evaluate": {"problems": 4},
             "sampling": {"max_new_tokens": 24}}
HEAVY = ("torch", "transformers", "vllm", "tokenizers", "safetensors", "pyarrow", "numpy", "polars", "math_verify", "sympy", "yaml")
WORK_START = re.compile(r"work starts ([0-9.]+) s after process start")


def environment(ws: Path) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HOME": str(ws), "LANG": "C.UTF-8"}


def run(cmd: list[str], ws: Path) -> tuple[float, str]:
    """Wall seconds of ``cmd`` in ``ws`` and its stderr; a failure stops the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ws, env=environment(ws), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return wall, result.stdout + result.stderr


def work_start(output: str, cmd: str) -> float:
    found = WORK_START.findall(output)
    if len(found) != 1:
        sys.exit(f"{cmd}: expected one 'work starts' line, found {len(found)} (is this checkout's rlint/cli.py logging it?)")
    return float(found[0])


def build_workspace(path: Path) -> Path:
    """The tiny model and a one-round DVC workspace of this checkout's dvc.yaml; one full ``dvc repro``."""
    from rlint.policy import build_char_tokenizer, build_tiny_llama, save_policy
    from tests.conftest import make_workspace

    model = path / "model"
    tokenizer = build_char_tokenizer()
    save_policy(build_tiny_llama(len(tokenizer), tokenizer, hidden_size=32, intermediate_size=64, layers=2, heads=2, max_length=128, seed=0),
                tokenizer, model, {"origin": "bench_stage_start"})
    ws = make_workspace(path / "ws", {**OVERRIDES, "bootstrap": {**OVERRIDES["bootstrap"], "model_path": str(model)}}, rounds=1)
    run([str(BIN / "python"), "-m", "dvc", "init", "--no-scm", "-q"], ws)
    wall, _ = run([str(BIN / "python"), "-m", "dvc", "repro"], ws)
    print(f"workspace {ws}: dvc repro of bootstrap and round 1 took {wall:.1f} s", flush=True)
    return ws


def heavy_imports(stage: str, ws: Path) -> dict[str, float]:
    """Seconds of cumulative import time per heavy package the stage command imports (top-level entries of ``-X importtime``)."""
    _, output = run([str(BIN / "python"), "-X", "importtime", str(BIN / "rlint"), stage, "--round", "1"], ws)
    seconds: dict[str, float] = {}
    total = 0.0
    for line in output.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if not name[1:].startswith(" "):  # a top-level import (nested ones are indented): their sum is all import time
            total += int(cumulative) / 1e6
        if name.strip() in HEAVY:  # each module is listed once, where it was first imported, with what it imported
            seconds[name.strip()] = round(int(cumulative) / 1e6, 3)
    return {"all": round(total, 3), **dict(sorted(seconds.items(), key=lambda item: -item[1]))}


def measure(ws: Path, repeats: int) -> dict:
    samples: dict[str, dict[str, list[float]]] = {stage: {"start": [], "wall": [], "dvc": [], "dvc_start": []} for stage in ROUND_STAGES}
    for i in range(repeats):
        for stage in ROUND_STAGES:
            cmd = [str(BIN / "rlint"), stage, "--round", "1"]
            wall, output = run(cmd, ws)
            samples[stage]["wall"].append(wall)
            samples[stage]["start"].append(work_start(output, " ".join(cmd[1:])))
        for stage in ROUND_STAGES:
            cmd = [str(BIN / "python"), "-m", "dvc", "repro", "-f", "-s", f"{stage}@r1"]
            wall, output = run(cmd, ws)
            samples[stage]["dvc"].append(wall)
            samples[stage]["dvc_start"].append(work_start(output, f"dvc repro {stage}@r1"))
        print(f"repeat {i + 1}/{repeats} done", flush=True)

    def median(key: str) -> dict[str, float]:
        return {stage: round(statistics.median(samples[stage][key]), 3) for stage in ROUND_STAGES}

    return {
        "stage_start_seconds": median("start"),
        "stage_wall_seconds": median("wall"),
        "dvc_wall_seconds": median("dvc"),
        "dvc_stage_start_seconds": median("dvc_start"),
        "heavy_import_seconds": {stage: heavy_imports(stage, ws) for stage in ROUND_STAGES},
        "samples": samples,
    }


def table(result: dict) -> str:
    lines = [f"{'stage':<10} {'start→work s':>13} {'process s':>10} {'dvc repro s':>12} {'dvc share s':>12}  heavy imports (s)"]
    for stage in ROUND_STAGES:
        start, wall, dvc = (result[key][stage] for key in ("stage_start_seconds", "stage_wall_seconds", "dvc_wall_seconds"))
        heavy = result["heavy_import_seconds"][stage]
        named = ", ".join(f"{name} {secs:.2f}" for name, secs in heavy.items() if name != "all")
        lines.append(f"{stage:<10} {start:>13.2f} {wall:>10.2f} {dvc:>12.2f} {dvc - wall:>12.2f}  all {heavy['all']:.2f}: {named}")
    return "\n".join(lines)


def git_revision() -> str | None:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="key of this run in --out (e.g. before, after)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "round" / "stage_start.json", help="JSON file to merge into")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each stage (medians reported)")
    parser.add_argument("--code", help="what the checkout is, recorded in the JSON (default: its git revision)")
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    tmp = None if args.keep else tempfile.mkdtemp(prefix="bench_stage_start-")
    try:
        ws = build_workspace(args.keep or Path(tmp))
        result = {"code": args.code or git_revision(), "checkout": str(REPO), "repeats": args.repeats, "cpus": os.cpu_count(), **measure(ws, args.repeats)}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(result))
    merged = json.loads(args.out.read_text()) if args.out.exists() else {}
    merged[args.label] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(merged, indent=1) + "\n")
    print(f"wrote {args.out} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
