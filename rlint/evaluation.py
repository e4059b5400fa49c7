"""Scoring a policy on held-out problems (used by bootstrap and evaluate), and the shares reported from the rows.

*Sound accuracy* is the share of answers that are right **and** have every step right (the task's
ground-truth step checker); held-out accuracy counts a right answer reached through a wrong step
too. Both come with their binomial standard error ``sqrt(p (1 - p) / n)``.
"""

from __future__ import annotations

import math

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


def sound_accuracy(rows: list[dict]) -> float:
    """Share of rows whose reward is 1 and whose every step is right (``true_first_error_step`` None).

    Only meaningful for a task with a step checker (without one every first error is None).

    >>> sound_accuracy([{"reward": 1.0, "true_first_error_step": None}, {"reward": 1.0, "true_first_error_step": 2},
    ...                 {"reward": 0.0, "true_first_error_step": 1}, {"reward": None, "true_first_error_step": None}])
    0.25
    """
    return sum(1 for r in rows if r["reward"] == 1.0 and r["true_first_error_step"] is None) / max(1, len(rows))


def right_through_wrong_share(rows: list[dict]) -> float | None:
    """Among rows whose reward is 1, the share with a wrong step (``true_first_error_step`` set); None without a right row.

    >>> right_through_wrong_share([{"reward": 1.0, "true_first_error_step": None}, {"reward": 1.0, "true_first_error_step": 3},
    ...                            {"reward": 0.0, "true_first_error_step": 1}])
    0.5
    >>> right_through_wrong_share([{"reward": 0.0, "true_first_error_step": 1}]) is None
    True
    """
    right = [r for r in rows if r["reward"] == 1.0]
    return sum(1 for r in right if r["true_first_error_step"] is not None) / len(right) if right else None


def binomial_sem(p: float, n: int) -> float:
    """Standard error ``sqrt(p (1 - p) / n)`` of a share ``p`` measured on ``n`` independent items (0 for n = 0).

    >>> binomial_sem(0.5, 100)
    0.05
    """
    return math.sqrt(p * (1.0 - p) / n) if n > 0 else 0.0


def heldout_metrics(rows: list[dict], has_step_checker: bool) -> dict:
    """``heldout_accuracy``, ``heldout_accuracy_sem``, ``sound_accuracy``, ``sound_accuracy_sem`` (None without a step
    checker) and ``evaluate_problems`` of scored held-out rows, rounded to 4 decimals.

    >>> rows = [{"reward": 1.0, "true_first_error_step": None}, {"reward": 1.0, "true_first_error_step": 2},
    ...         {"reward": 0.0, "true_first_error_step": 1}, {"reward": 0.0, "true_first_error_step": 1}]
    >>> heldout_metrics(rows, True)
    {'heldout_accuracy': 0.5, 'heldout_accuracy_sem': 0.25, 'sound_accuracy': 0.25, 'sound_accuracy_sem': 0.2165, 'evaluate_problems': 4}
    >>> heldout_metrics(rows, False)["sound_accuracy"] is None
    True
    """
    n, right, sound = len(rows), accuracy(rows), sound_accuracy(rows)
    return {
        "heldout_accuracy": round(right, 4), "heldout_accuracy_sem": round(binomial_sem(right, n), 4),
        "sound_accuracy": round(sound, 4) if has_step_checker else None,
        "sound_accuracy_sem": round(binomial_sem(sound, n), 4) if has_step_checker else None,
        "evaluate_problems": n,
    }


def heldout_line(metrics: dict) -> str:
    """The log line of :func:`heldout_metrics`: ``held-out accuracy 0.500 ± 0.250 (n=4), sound 0.250 ± 0.217``.

    >>> heldout_line({"heldout_accuracy": 0.5, "heldout_accuracy_sem": 0.25, "sound_accuracy": None, "evaluate_problems": 4})
    'held-out accuracy 0.500 ± 0.250 (n=4), sound n/a (no step checker)'
    """
    sound = ("n/a (no step checker)" if metrics["sound_accuracy"] is None
             else f"{metrics['sound_accuracy']:.3f} ± {metrics['sound_accuracy_sem']:.3f}")
    return f"held-out accuracy {metrics['heldout_accuracy']:.3f} ± {metrics['heldout_accuracy_sem']:.3f} (n={metrics['evaluate_problems']}), sound {sound}"
