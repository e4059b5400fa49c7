"""Diagnostics of a policy's own samples against the ground-truth step checker (printed with the bootstrap).

Held-out accuracy is greedy; RL learns from samples. These figures describe the regime a round
starts in, from ``G`` samples of each of a few held-out problems at the sampling temperature:

- ``sample_accuracy``: share of samples with reward 1 (unscorable counts as wrong);
- ``no_right_sample_share``: share of groups (problems) without a right sample, where outcome-only
  GRPO has no signal at all (every advantage is zero);
- ``right_through_wrong_share``: among right samples, the share with a wrong step (a right answer
  reached through a wrong line): outcome reward credits those, process supervision does not;
- ``first_error_distribution``: failures per true first wrong step (``"k"`` -> count; JSON keys are strings);
- ``step_error_rate_by_position``: for step ``k``, among the samples whose steps ``1..k-1`` are right
  and whose problem has a step ``k``, the share wrong at ``k`` (a hazard rate); ``samples_reaching_position``
  gives each denominator. Steps are those the checker counts (for the arithmetic task, the answer line is the last).

:func:`sample_rows` samples (I/O); :func:`base_diagnostics` and :func:`diagnostics_table` are pure.
"""

from __future__ import annotations

from collections import Counter

from rlint.engine.base import RolloutEngine, SamplingRequest
from rlint.evaluation import right_through_wrong_share
from rlint.prompts import encode_prompt
from rlint.tasks.base import Problem, Task


def sample_rows(engine: RolloutEngine, task: Task, problems: list[Problem], samples_per_prompt: int, temperature: float, top_p: float,
                max_new_tokens: int, seed: int) -> list[dict]:
    """``samples_per_prompt`` sampled completions per problem; rows with ``problem_id``, ``reward``,
    ``true_first_error_step`` and ``steps`` (the steps the checker counts: the reference solution's lines).
    The task needs a step checker and a reference ``solution``."""
    request = SamplingRequest(prompts=[encode_prompt(engine, task, p.prompt) for p in problems], n=samples_per_prompt,
                              temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    rows = []
    for problem, group in zip(problems, engine.generate(request, desc="base diagnostics")):
        steps = len(task.solution(problem).splitlines())
        for sample in group:
            completion = engine.decode(sample.token_ids)
            rows.append({"problem_id": problem.problem_id, "reward": task.reward(completion, problem.answer),
                         "true_first_error_step": task.first_error_step(problem, completion), "steps": steps})
    return rows


def base_diagnostics(rows: list[dict]) -> dict:
    """The figures of the module docstring from rows of :func:`sample_rows` (``problem_id``, ``reward``,
    ``true_first_error_step``, ``steps``); shares rounded to 4 decimals, None where undefined.

    >>> rows = [{"problem_id": "a", "reward": 1.0, "true_first_error_step": None, "steps": 2},
    ...         {"problem_id": "a", "reward": 0.0, "true_first_error_step": 2, "steps": 2},
    ...         {"problem_id": "b", "reward": 0.0, "true_first_error_step": 1, "steps": 3},
    ...         {"problem_id": "b", "reward": 1.0, "true_first_error_step": 3, "steps": 3},
    ...         {"problem_id": "c", "reward": None, "true_first_error_step": 1, "steps": 3}]
    >>> d = base_diagnostics(rows)
    >>> d["sample_accuracy"], d["no_right_sample_share"], d["right_through_wrong_share"], d["first_error_distribution"]
    (0.4, 0.3333, 0.5, {'1': 2, '2': 1})
    >>> d["step_error_rate_by_position"], d["samples_reaching_position"]
    ({'1': 0.4, '2': 0.3333, '3': 1.0}, {'1': 5, '2': 3, '3': 1})
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["problem_id"], []).append(row)
    right = sum(1 for r in rows if r["reward"] == 1.0)
    failures = Counter(r["true_first_error_step"] for r in rows if r["reward"] != 1.0 and r["true_first_error_step"] is not None)
    reached, wrong = Counter(), Counter()
    for row in rows:
        first = row["true_first_error_step"]
        last = row["steps"] if first is None else min(first, row["steps"])
        reached.update(range(1, last + 1))
        if first is not None:
            wrong[first] += 1
    share = right_through_wrong_share(rows)
    return {
        "samples": len(rows), "prompts": len(groups),
        "sample_accuracy": round(right / max(1, len(rows)), 4),
        "no_right_sample_share": round(sum(1 for g in groups.values() if not any(r["reward"] == 1.0 for r in g)) / max(1, len(groups)), 4),
        "right_through_wrong_share": None if share is None else round(share, 4),
        "first_error_distribution": {str(k): failures[k] for k in sorted(failures)},
        "step_error_rate_by_position": {str(k): round(wrong[k] / reached[k], 4) for k in sorted(reached)},
        "samples_reaching_position": {str(k): reached[k] for k in sorted(reached)},
    }


def diagnostics_table(diagnostics: dict) -> str:
    """A compact text form of :func:`base_diagnostics`: the shares on one line, then one line per step.

    >>> print(diagnostics_table({"samples": 4, "prompts": 2, "sample_accuracy": 0.5, "no_right_sample_share": 0.5,
    ...     "right_through_wrong_share": None, "first_error_distribution": {"2": 2},
    ...     "step_error_rate_by_position": {"1": 0.0, "2": 0.5}, "samples_reaching_position": {"1": 4, "2": 4}}))
    base diagnostics (2 prompts x 2 samples): sample accuracy 0.500, groups without a right sample 0.500, right answers through a wrong step n/a
    step  reached  error_rate  first_errors
       1        4       0.000             0
       2        4       0.500             2
    """
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"base diagnostics ({diagnostics['prompts']} prompts x {diagnostics['samples'] // max(1, diagnostics['prompts'])} samples): "
             f"sample accuracy {fmt(diagnostics['sample_accuracy'])}, groups without a right sample {fmt(diagnostics['no_right_sample_share'])}, "
             f"right answers through a wrong step {fmt(diagnostics['right_through_wrong_share'])}",
             f"{'step':>4}{'reached':>9}{'error_rate':>12}{'first_errors':>14}"]
    for step, rate in diagnostics["step_error_rate_by_position"].items():
        lines.append(f"{step:>4}{diagnostics['samples_reaching_position'][step]:>9}{rate:>12.3f}{diagnostics['first_error_distribution'].get(step, 0):>14}")
    return "\n".join(lines)
