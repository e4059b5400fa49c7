"""evaluate: held-out accuracy of the round's new policy (greedy by default), its standard error, and sound accuracy
(right answer and every step right; None for a task without a step checker)."""

from __future__ import annotations

import logging
from pathlib import Path

from rlint.config import Params, round_seed
from rlint.data import write_rows
from rlint.engine import load_engine
from rlint.evaluation import heldout_line, heldout_metrics, score_policy
from rlint.prompts import check_chat_template, encode_prompt
from rlint.stages.common import check_context, checkpoint_path, metrics_path, write_json_atomic
from rlint.tasks import load_task

log = logging.getLogger(__name__)


def run(params: Params, round_id: int, root: Path) -> dict:
    task = load_task(params.task, params.limits)
    engine = load_engine(str(checkpoint_path(root, round_id)), params.sampling)
    problems = task.problems("heldout", 0, params.evaluate.problems)
    check_chat_template(task, engine.tokenizer, checkpoint_path(root, round_id))
    check_context(task, problems, [encode_prompt(engine, task, p.prompt) for p in problems], params.sampling.max_new_tokens, checkpoint_path(root, round_id),
                  params.sampling.vllm.max_model_len)
    rows = score_policy(engine, task, problems, params.sampling.max_new_tokens, params.evaluate.temperature, round_seed(params, round_id, "evaluate"))
    for row in rows:
        row.update(round=round_id, policy_version=round_id)
    write_rows(root, "eval", round_id, rows)
    metrics = {"round": round_id, **heldout_metrics(rows, task.has_step_checker), "engine": engine.name}
    write_json_atomic(metrics_path(root, "evaluate", round_id), metrics)
    log.info("evaluate round %d: %s (%s)", round_id, heldout_line(metrics), engine.name)
    return metrics
