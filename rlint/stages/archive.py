"""archive: the snapshot of hard start states after round k (see rlint/archive.py).

Round 0's archive is empty (nothing was mined before round 1), so round 1 does not read it;
it exists for DVC, whose rollout and archive stages of round k depend on round k-1's. ``outcome`` mode archives
nothing, so plain GRPO never replays.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from rlint.archive import update_archive
from rlint.config import Params
from rlint.data import read_rows, write_rows
from rlint.stages.common import metrics_path, write_json_atomic

log = logging.getLogger(__name__)


def run(params: Params, round_id: int, root: Path) -> dict:
    if round_id == 0 or params.mode == "outcome":
        rows: list[dict] = []
    else:
        rows = update_archive(
            read_rows(root, "archive", round_id - 1) if round_id > 1 else [], read_rows(root, "rollouts", round_id), read_rows(root, "failures", round_id),
            read_rows(root, "corrections", round_id), round_id, params.archive.max_replays,
        )
    write_rows(root, "archive", round_id, rows)
    status = Counter(row["status"] for row in rows)
    metrics = {
        "round": round_id,
        "archive_size": len(rows),
        "archive_added": sum(row["origin_round"] == round_id for row in rows),
        "archive_open": status["open"],
        "archive_solved": status["solved"],
        "archive_solved_this_round": sum(row["solved_round"] == round_id for row in rows),
        "archive_retired": status["retired"],
    }
    if round_id > 0:
        write_json_atomic(metrics_path(root, "archive", round_id), metrics)
    log.info("archive round %d: %s", round_id, metrics)
    return metrics
