"""rollout: G sampled completions per training problem with the previous round's policy.

A share of the batch (``archive.replay_share``) restarts from open entries of the previous
round's archive: the context is the problem's prompt plus the archived good prefix, and the
verifier scores the prefix together with what the policy writes after it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rlint.config import Params, round_seed
from rlint.archive import select_replays
from rlint.data import read_rows, write_rows
from rlint.engine import SamplingRequest, load_engine
from rlint.evaluation import right_through_wrong_share
from rlint.prompts import check_chat_template
from rlint.rollout import rollout_contexts, rollout_rows
from rlint.stages.common import check_context, checkpoint_path, metrics_path, seed_everything, write_json_atomic
from rlint.tasks import load_task
from rlint.tasks.base import Problem

log = logging.getLogger(__name__)


def run(params: Params, round_id: int, root: Path) -> dict:
    task = load_task(params.task, params.limits)
    seed = round_seed(params, round_id, "rollout")
    seed_everything(seed)
    engine = load_engine(str(checkpoint_path(root, round_id - 1)), params.sampling)
    check_chat_template(task, engine.tokenizer, checkpoint_path(root, round_id - 1))
    cfg = params.rollout
    # round 1 starts from the empty base archive (nothing was mined before it)
    replaying = params.archive.replay_share > 0 and params.mode != "outcome" and round_id > 1
    archived = read_rows(root, "archive", round_id - 1) if replaying else []
    replays = select_replays(archived, int(params.archive.replay_share * cfg.prompts_per_round))
    fresh = task.problems("train", (round_id - 1) * cfg.prompts_per_round, cfg.prompts_per_round - len(replays))
    problems = fresh + [Problem(e["problem_id"], e["prompt"], e["answer"]) for e in replays]
    starts: list[dict | None] = [None] * len(fresh) + replays
    started = time.monotonic()
    contexts = rollout_contexts(engine, problems, starts, task)
    check_context(task, fresh, contexts[:len(fresh)], params.sampling.max_new_tokens, checkpoint_path(root, round_id - 1),
                  params.sampling.vllm.max_model_len)
    request = SamplingRequest(
        prompts=contexts,
        n=cfg.samples_per_prompt,
        temperature=params.sampling.temperature, top_p=params.sampling.top_p,
        max_new_tokens=params.sampling.max_new_tokens, seed=seed,
    )
    samples = engine.generate(request, desc=f"rollout round {round_id}")
    rows = rollout_rows(engine, task, problems, samples, round_id, starts, contexts)
    seconds = time.monotonic() - started
    write_rows(root, "rollouts", round_id, rows)
    tokens = sum(len(r["token_ids"]) for r in rows)
    through_wrong = right_through_wrong_share(rows) if task.has_step_checker else None
    metrics = {
        "round": round_id,
        "rollouts": len(rows),
        "replayed_prompts": len(replays),
        "replay_accuracy": round(sum(r["reward"] == 1.0 for r in rows if r["archive_id"]) / max(1, sum(1 for r in rows if r["archive_id"])), 4),
        "train_accuracy": round(sum(r["reward"] == 1.0 for r in rows) / len(rows), 4),
        "unscorable_rate": round(sum(r["reward"] is None for r in rows) / len(rows), 4),
        # right rollouts with a wrong step (ground truth; None without a step checker or a right rollout): outcome reward credits them
        "right_through_wrong_share": None if through_wrong is None else round(through_wrong, 4),
        "generated_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "engine": engine.name,  # outputs differ between engines: which one sampled this round
    }
    write_json_atomic(metrics_path(root, "rollout", round_id), metrics)
    log.info("rollout round %d: %s", round_id, metrics)
    return metrics
