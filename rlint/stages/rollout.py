"""rollout: G sampled completions per training problem with the previous round's policy."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rlint.config import Params, round_seed
from rlint.data import write_rows
from rlint.engine import SamplingRequest, load_engine
from rlint.stages.common import checkpoint_path, metrics_path, seed_everything, write_json_atomic
from rlint.steps import step_ends, token_texts
from rlint.tasks import load_task

log = logging.getLogger(__name__)


def rollout_rows(engine, task, problems, samples, round_id: int) -> list[dict]:
    """Rows of the ``rollouts`` dataset for ``samples[i][j]`` = sample j of ``problems[i]``."""
    rows = []
    for problem, group in zip(problems, samples):
        prompt_ids = engine.encode(problem.prompt)
        for index, sample in enumerate(group):
            completion = engine.decode(sample.token_ids)
            rows.append({
                "rollout_id": f"r{round_id}-{problem.problem_id}-s{index}",
                "round": round_id,
                "policy_version": round_id - 1,
                "problem_id": problem.problem_id,
                "sample_index": index,
                "prompt": problem.prompt,
                "answer": problem.answer,
                "prompt_token_ids": prompt_ids,
                "token_ids": sample.token_ids,
                "logprobs": sample.logprobs,
                "step_ends": step_ends(token_texts(engine.tokenizer, sample.token_ids), task.step_delimiter),
                "completion": completion,
                "finish_reason": sample.finish_reason,
                "reward": task.reward(completion, problem.answer),
                "true_first_error_step": task.first_error_step(problem, completion) if task.has_step_checker else None,
            })
    return rows


def run(params: Params, round_id: int, root: Path) -> dict:
    task = load_task(params.task)
    seed = round_seed(params, round_id, "rollout")
    seed_everything(seed)
    engine = load_engine(str(checkpoint_path(root, round_id - 1)), params.sampling)
    cfg = params.rollout
    problems = task.problems("train", (round_id - 1) * cfg.prompts_per_round, cfg.prompts_per_round)
    started = time.monotonic()
    request = SamplingRequest(
        prompts=[engine.encode(p.prompt) for p in problems], n=cfg.samples_per_prompt,
        temperature=params.sampling.temperature, top_p=params.sampling.top_p,
        max_new_tokens=params.sampling.max_new_tokens, seed=seed,
    )
    samples = engine.generate(request, desc=f"rollout round {round_id}")
    rows = rollout_rows(engine, task, problems, samples, round_id)
    seconds = time.monotonic() - started
    write_rows(root, "rollouts", round_id, rows)
    tokens = sum(len(r["token_ids"]) for r in rows)
    metrics = {
        "round": round_id,
        "rollouts": len(rows),
        "train_accuracy": round(sum(r["reward"] == 1.0 for r in rows) / len(rows), 4),
        "unscorable_rate": round(sum(r["reward"] is None for r in rows) / len(rows), 4),
        "generated_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "engine": engine.name,  # outputs differ between engines: which one sampled this round
    }
    write_json_atomic(metrics_path(root, "rollout", round_id), metrics)
    log.info("rollout round %d: %s", round_id, metrics)
    return metrics
