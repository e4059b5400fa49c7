"""The per-round table, from the DVC metrics files of every stage."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = [
    # (header, stage, metric key, format)
    ("round", None, "round", "{}"),
    ("heldout_acc", "evaluate", "heldout_accuracy", "{:.3f}"),
    ("sound_acc", "evaluate", "sound_accuracy", "{:.3f}"),  # right answer and every step right (tasks with a step checker)
    ("train_acc", "rollout", "train_accuracy", "{:.3f}"),
    ("failure_rate", "rollout", "failure_rate", "{:.3f}"),
    ("failures_mined", "mine", "failures_located", "{}"),
    ("loc_acc", "mine", "localization_accuracy", "{:.3f}"),
    ("cont/failure", "mine", "continuations_per_failure", "{:.1f}"),
    ("branches", "correct", "corrected_branches", "{}"),
    ("loss", "optimize", "loss", "{:.4f}"),
]


def round_table(root: str | Path) -> list[dict]:
    """One dict per round found under ``metrics/``: stage name -> that stage's metrics."""
    metrics_root = Path(root) / "metrics"
    rounds: dict[int, dict] = {}
    for path in sorted(metrics_root.glob("*/round=*.json")):
        round_id = int(path.stem.split("=")[1])
        rounds.setdefault(round_id, {})[path.parent.name] = json.loads(path.read_text())
    for stages in rounds.values():
        rollout = stages.get("rollout")
        if rollout is not None:
            rollout["failure_rate"] = round(1.0 - rollout["train_accuracy"], 4)
    return [dict(stages, round=round_id) for round_id, stages in sorted(rounds.items())]


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table; '-' where a stage has not run (round 0 is the base policy)."""
    cells = [[h for h, *_ in COLUMNS]]
    for row in rows:
        line = []
        for _, stage, key, fmt in COLUMNS:
            value = row["round"] if stage is None else row.get(stage, {}).get(key)
            line.append("-" if value is None else fmt.format(value))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def markdown_table(rows: list[dict]) -> str:
    text = format_table(rows).splitlines()
    split = [line.split() for line in text]
    return "\n".join(["| " + " | ".join(split[0]) + " |", "|" + "---|" * len(split[0])] + ["| " + " | ".join(r) + " |" for r in split[1:]])


def print_report(root: str | Path) -> None:
    rows = round_table(root)
    if not rows:
        print(f"no metrics under {Path(root) / 'metrics'}: run some rounds first")
        return
    print(format_table(rows))
