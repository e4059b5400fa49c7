"""The audit on the outputs of a small real run: two tiny rounds of the real stages on the committed base policy.

Every figure the audit computes with polars is recomputed here independently, row by row, from the
Parquet files read with pyarrow (and checked against the stages' own metrics files).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import REPO, make_workspace

ROUNDS = (1, 2)


def make_real_run(path: Path, rounds: tuple[int, ...] = ROUNDS) -> Path:
    """Run rollout..evaluate in-process for ``rounds`` on the committed base policy (round 0)."""
    from rlint.config import load_params
    from rlint.stages import archive, correct, credit, evaluate, mine, optimize, rollout

    ws = make_workspace(path, {
        "bootstrap": {"model_path": str(REPO / "checkpoints" / "round=0")},
        "rollout": {"prompts_per_round": 8, "samples_per_prompt": 8},  # the sparse base: enough groups with a right sample to grow branches
        "mine": {"continuations_per_probe": 4},
        "sampling": {"max_new_tokens": 64},
    }, rounds=max(rounds))
    shutil.copytree(REPO / "checkpoints" / "round=0", ws / "checkpoints" / "round=0")
    (ws / "metrics" / "evaluate").mkdir(parents=True)
    shutil.copy(REPO / "metrics" / "evaluate" / "round=0.json", ws / "metrics" / "evaluate" / "round=0.json")
    params = load_params(ws / "params.yaml")
    from rlint.inputs import write_input_record

    for key in params.inputs:  # the model folder's content record (dvc.yaml: input@bootstrap.model_path)
        write_input_record(params, key, ws)
    archive.run(params, 0, ws)  # the empty archive round 1 starts from (dvc.yaml: archive_base)
    for k in rounds:
        for stage in (rollout, mine, correct, archive, credit, optimize, evaluate):
            stage.run(params, k, ws)
    return ws


def rows(ws: Path, dataset: str, k: int) -> list[dict]:
    return pq.read_table(ws / "data" / dataset / f"round={k}" / "part-0.parquet").to_pylist()


def stage_metrics(ws: Path, stage: str, k: int) -> dict:
    return json.loads((ws / "metrics" / stage / f"round={k}.json").read_text())


def by_round(result) -> dict[int, dict]:
    return {r["round"]: r for r in result.rounds.to_dicts()}
