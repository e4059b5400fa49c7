"""mine: locate the first wrong step of every chosen failed rollout (read -> identify -> write).

The strategy is ``mine.strategy`` (rlint/identify/: ``search`` or ``repair``, each with an
``oracle`` mode); ``outcome`` mode mines nothing (it writes empty tables).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rlint.config import Params, round_seed
from rlint.data import read_rows, write_rows
from rlint.engine import LazyEngine
from rlint.identify import IDENTIFY, Identified, identify_metrics, select_failures
from rlint.stages.common import checkpoint_path, metrics_path, seed_everything, write_json_atomic
from rlint.tasks import load_task

log = logging.getLogger(__name__)


def run(params: Params, round_id: int, root: Path) -> dict:
    rollouts = read_rows(root, "rollouts", round_id)
    chosen = [] if params.mode == "outcome" else select_failures(rollouts, params.mine.failures_per_problem, params.mine.max_failures)
    started = time.monotonic()
    found = Identified()
    if chosen:
        task = load_task(params.task, params.limits)
        seed = round_seed(params, round_id, "mine")
        seed_everything(seed)
        engine = LazyEngine(str(checkpoint_path(root, round_id - 1)), params.sampling)  # started only if a failure needs samples
        found = IDENTIFY[params.mine.strategy](chosen, rollouts, engine, task, params, seed, round_id)
        if not engine.started:
            log.info("mine round %d: every failure was decided without sampling (e.g. no sample of its prompt was right); no engine started", round_id)
    write_rows(root, "failures", round_id, found.failures)
    write_rows(root, "continuations", round_id, found.continuations)
    metrics = {"round": round_id, **identify_metrics(found), "seconds": round(time.monotonic() - started, 2)}
    write_json_atomic(metrics_path(root, "mine", round_id), metrics)
    log.info("mine round %d: %s", round_id, metrics)
    return metrics
