"""Scoring a policy on held-out problems (used by bootstrap and evaluate)."""

from __future__ import annotations

from rlint.engine.base import RolloutEngine, SamplingRequest
from rlint.prompts import encode_prompt
from rlint.tasks.base import Problem, Task


def score_policy(engine: RolloutEngine, task: Task, problems: list[Problem], max_new_tokens: int, temperature: float, seed: int) -> list[dict]:
    """One completion per problem; rows with ``completion``, ``reward`` and the ground-truth first error."""
    request = SamplingRequest(
        prompts=[encode_prompt(engine, task, p.prompt) for p in problems], n=1, temperature=temperature,
        max_new_tokens=max_new_tokens, seed=seed,
    )
    results = engine.generate(request, desc="evaluate")
    rows = []
    for problem, (sample,) in zip(problems, results):
        completion = engine.decode(sample.token_ids)
        rows.append({
            "problem_id": problem.problem_id, "prompt": problem.prompt, "answer": problem.answer,
            "completion": completion, "reward": task.reward(completion, problem.answer),
            "true_first_error_step": task.first_error_step(problem, completion) if task.has_step_checker else None,
        })
    return rows


def accuracy(rows: list[dict]) -> float:
    """Share of rows whose reward is 1 (unscorable rows count as wrong)."""
    return sum(1 for r in rows if r["reward"] == 1.0) / max(1, len(rows))
