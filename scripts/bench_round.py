"""The round start-up tax: the demo's rounds the old way (every ``dvc repro`` and every stage a fresh process that does
its own imports, every sampling stage its own engine) and the new way (the stages forked from one warm stage host,
rlint/stage_host.py; one vLLM server per policy checkpoint where vLLM samples), side by side in one run.

    python scripts/bench_round.py                 # both rounds of params.yaml, old then new; bench/round/
    python scripts/bench_round.py --rounds 1

Each way runs in a fresh copy of this checkout's tracked files (params.yaml, dvc.yaml, dvc.lock, the committed base
checkpoint: the bootstrap is up to date, as in `make demo`) through the rounds flow's own ``reproduce_rounds``, in one
Prefect flow. Per stage it parses what the stage logged: seconds spent generating (the engines' "N sequences, T
tokens, X s" lines), training (the optimize steps' seconds) and starting engines. Overhead is the round's wall time
not spent generating or training (reward scoring is not timed apart and counts as overhead: on the arithmetic task it
is a few milliseconds); a way with a stage host counts the host's start in its rounds' time,
shared out over them. A way that pins an engine other than params.yaml's commits the copy's bootstrap as is (its
checkpoint does not depend on the engine). Writes bench/round/summary.json and bench/round/records.json; run it on a
quiet machine (docs/engines.md, "The round start-up benchmark").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GENERATED = re.compile(r" (\d+) sequences, (\d+) tokens, ([\d.]+)s")
TRAINED = re.compile(r"optimize step \d+/\d+ .* ([\d.]+)s\s*$", re.MULTILINE)
ENGINE_STARTED = re.compile(r"vLLM engine on .* ready in ([\d.]+)s|vLLM: \d+ data-parallel replicas of .* ready in ([\d.]+)s")
WORK_STARTS = re.compile(r"rlint (\w+)(?: --round \d+)?: work starts ([\d.]+) s after process start")  # rlint/cli.py's log_work_start


def copy_checkout(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.no_scm", "true"], cwd=dest, check=True, capture_output=True)
    return dest


def stage_record(record: dict) -> dict:
    output = record["output"]
    generated = [(int(n), int(t), float(s)) for n, t, s in GENERATED.findall(output)]
    starts = [float(a or b) for a, b in ENGINE_STARTED.findall(output)]
    work = WORK_STARTS.findall(output)
    return {"target": record["target"], "wall_seconds": round(record["seconds"], 2),
            "generate_seconds": round(sum(s for _, _, s in generated), 2), "generated_tokens": sum(t for _, t, _ in generated),
            "train_seconds": round(sum(float(s) for s in TRAINED.findall(output)), 2),
            "engine_starts": len(starts), "engine_start_seconds": round(sum(starts), 2),
            "shared_server": "vLLM engine: the shared server" in output,
            "stage_start_seconds": float(work[0][1]) if work else None}


def set_engine(root: Path, engine: str | None) -> bool:
    """Pin ``sampling.engine`` in the copy's params.yaml (a line edit: the file's comments and order stay); whether it changed."""
    if engine is None:
        return False
    path = root / "params.yaml"
    before = path.read_text()
    text, count = re.subn(r"(?m)^(  engine: )\S+", rf"\g<1>{engine}", before, count=1)
    assert count == 1, "sampling.engine not found in params.yaml"
    path.write_text(text)
    return text != before


def run_way(root: Path, rounds: list[int], shared: bool, host: bool) -> dict:
    from prefect import flow

    from flows.rounds import reproduce_rounds

    os.environ["PYTHONPATH"] = str(root)  # the stages DVC runs import the copy's rlint, not the installed one
    timings: list[dict] = []

    @flow(name=f"rlint-bench-round-{'new' if shared else 'old'}")
    def bench_flow() -> None:
        reproduce_rounds(str(root), rounds, shared_engine="on" if shared else "off", timings=timings, stage_host="on" if host else "off")

    bench_flow()
    end = time.monotonic()
    stages = [stage_record(r) for r in timings if "target" in r]
    servers = [{"checkpoint_round": r["server"], "start_seconds": round(r["start_seconds"], 2), "stop_seconds": round(r["stop_seconds"], 2)}
               for r in timings if "server" in r]
    first = min(r["start"] for r in timings if "start" in r)
    host_start = sum(r["host_start_seconds"] for r in timings if "host_start_seconds" in r)
    round_seconds = end - first + host_start
    generate = sum(s["generate_seconds"] for s in stages)
    train = sum(s["train_seconds"] for s in stages)
    starts = sum(s["engine_starts"] for s in stages) + len(servers)
    return {"round_seconds": round(round_seconds / len(rounds), 2), "total_seconds": round(round_seconds, 2),
            "generate_seconds": round(generate, 2), "train_seconds": round(train, 2),
            "overhead_share": round((round_seconds - generate - train) / round_seconds, 3),
            "engine_starts": starts, "engine_starts_per_round": round(starts / len(rounds), 2), "host_start_seconds": round(host_start, 2),
            "stages": stages, "servers": servers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="the first N rounds of params.yaml (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "round")
    parser.add_argument("--ways", default="old:vllm:per-stage:no-host,shared:vllm:shared:host,new:auto:shared:host",
                        help="NAME:ENGINE:per-stage|shared:host|no-host,... (ENGINE: a sampling.engine value, or 'params' for params.yaml's)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="rlint-bench-prefect-"))
    from rlint.config import load_params

    rounds = sorted(item["id"] for item in load_params(REPO / "params.yaml").rounds.values())[:args.rounds]
    ways, settings = {}, [way.split(":") for way in args.ways.split(",")]
    with tempfile.TemporaryDirectory(prefix="rlint-bench-round-") as tmp:
        for name, engine, sharing, host in settings:
            root = copy_checkout(Path(tmp) / name)
            if set_engine(root, None if engine == "params" else engine):  # the bootstrap tracks sampling.engine (its held-out
                # evaluation runs on it); its checkpoint does not depend on it, and the rounds read only the checkpoint
                subprocess.run([sys.executable, "-m", "dvc", "commit", "-f", "-q", "bootstrap"], cwd=root, check=True, capture_output=True)
            ways[name] = {"engine": engine, "sharing": sharing, "host": host, **run_way(root, rounds, sharing == "shared", host == "host")}
    old, new = ways["old"], ways["new"]
    shared_vllm = ways.get("shared", new)
    sampling_first = {s["target"].split("@")[0]: s for s in new["stages"] if s["target"].endswith(f"@r{rounds[0]}")}
    summary = {"rounds": rounds,
               "round_seconds_old": old["round_seconds"], "round_seconds_new": new["round_seconds"],
               "overhead_share_old": old["overhead_share"], "overhead_share_new": new["overhead_share"],
               "engine_starts_per_round_old": old["engine_starts_per_round"],
               # vLLM servers for the checkpoints the rounds' rollout/mine/correct sample from (way "shared": vLLM pinned);
               # the last round's evaluate shares the next round's server in a campaign, and starts one of its own here
               "engine_starts_per_round_new": round(sum(1 for s in shared_vllm["servers"] if s["checkpoint_round"] < rounds[-1])
                                                    / len(rounds), 2),
               "engine_starts_new": {name: way["engine_starts"] for name, way in ways.items()},
               "round_seconds": {name: way["round_seconds"] for name, way in ways.items()},
               "overhead_share": {name: way["overhead_share"] for name, way in ways.items()},
               "speedup": round(old["total_seconds"] / new["total_seconds"], 2),
               "host_start_seconds_new": new["host_start_seconds"],
               "stage_start_seconds": {stage: record["stage_start_seconds"] for stage, record in sampling_first.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "records.json").write_text(json.dumps(ways, indent=1) + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{'way':<8}{'round s':>9}{'total s':>9}{'generate s':>12}{'train s':>9}{'overhead':>10}{'engine starts':>15}{'host start s':>14}")
    for name, way in ways.items():
        print(f"{name:<8}{way['round_seconds']:>9.1f}{way['total_seconds']:>9.1f}{way['generate_seconds']:>12.1f}{way['train_seconds']:>9.1f}"
              f"{way['overhead_share']:>10.2f}{way['engine_starts']:>15}{way['host_start_seconds']:>14.1f}")
    print(f"\n{'stage':<14}" + "".join(f"{n + ' wall':>13}{n + ' gen':>12}" for n in ways))
    for rows in zip(*(way["stages"] for way in ways.values())):
        print(f"{rows[0]['target']:<14}" + "".join(f"{r['wall_seconds']:>13.1f}{r['generate_seconds']:>12.1f}" for r in rows))
    print(f"\nspeedup {summary['speedup']}x; engine starts per round: old {summary['engine_starts_per_round_old']}, "
          f"new {summary['engine_starts_per_round_new']}; wrote {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
