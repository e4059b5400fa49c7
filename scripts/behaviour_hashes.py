"""Hashes of every data and checkpoint file of small two-round runs, for refactors that must not change behaviour.

A tiny bootstrap from scratch (tests/conftest.py's sizes), then four small workspaces that start from
the committed base checkpoint and run every stage of two rounds through ``rlint.cli.main`` in this
process: search (archive replays on), repair with the repairer trained, outcome with ``info_gain``
credit, and the oracle repair. Prints one sha256 per file and, with
``--compare FILE``, the files whose bytes differ from a record written before (exit 1 if any)::

    python scripts/behaviour_hashes.py --out /tmp/before.json          # on the old code
    python scripts/behaviour_hashes.py --compare /tmp/before.json      # on the new code

Metrics JSON files are left out: they hold timings. Run from the checkout whose code is tested
(PYTHONPATH=. where rlint is installed from another checkout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rlint.stage_graph import ROUND_STAGES  # noqa: E402

BASE = {"bootstrap": {"diagnostic_prompts": 2, "eval_problems": 8}, "rollout": {"prompts_per_round": 16, "samples_per_prompt": 4},
        "archive": {"replay_share": 0.5}, "mine": {"repair_samples": 2}}
ROUNDS = {"sampling": {"max_new_tokens": 64}, "evaluate": {"problems": 16}}
CONFIGS = {
    "search": {},
    "repair": {"mine": {"strategy": "repair", "repair_samples": 2, "repair_max_edit": 1.0},
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


def run(cli_main, ws: Path, *args: str) -> None:
    code = cli_main(["--root", str(ws), *args])
    if code != 0:
        raise SystemExit(f"{ws.name}: rlint {' '.join(args)} exited {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the hashes here (JSON)")
    parser.add_argument("--compare", type=Path, help="compare with hashes written before; exit 1 on any difference")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from rlint.cli import main as cli_main
    from tests.conftest import TINY_PARAMS, make_workspace

    hashes: dict[str, str] = {}
    real_bootstrap = yaml.safe_load((REPO / "params.yaml").read_text())["bootstrap"]
    with tempfile.TemporaryDirectory(prefix="rlint-behaviour-") as tmp:
        ws = make_workspace(Path(tmp) / "bootstrap", merged(TINY_PARAMS, BASE), rounds=0)
        run(cli_main, ws, "bootstrap")  # a tiny one from scratch: the SFT, diagnostics and evaluation code
        hashes.update({f"bootstrap/{path}": digest for path, digest in file_hashes(ws).items()})
        for name, overrides in CONFIGS.items():  # rounds from the committed base, which solves some problems
            ws = make_workspace(Path(tmp) / name, merged(TINY_PARAMS, BASE, {"bootstrap": real_bootstrap}, ROUNDS, overrides), rounds=args.rounds)
            shutil.copytree(REPO / "checkpoints" / "round=0", ws / "checkpoints" / "round=0")
            run(cli_main, ws, "archive", "--round", "0")
            for round_id in range(1, args.rounds + 1):
                for stage in ROUND_STAGES:
                    run(cli_main, ws, stage, "--round", str(round_id))
            hashes.update({f"{name}/{path}": digest for path, digest in file_hashes(ws).items() if not path.startswith("checkpoints/round=0/")})
    print(f"{len(hashes)} files hashed over {len(CONFIGS)} workspaces")
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
