"""Identify: locate the first wrong step of each chosen failed rollout.

Every strategy has one signature, ``identify(failures, rollouts, engine, task, params, seed,
round_id) -> Identified`` (rlint/identify/result.py), and is registered in :data:`IDENTIFY` under
the name ``mine.strategy`` uses:

- ``search`` (``rlint.identify.search.identify``) bisects over steps with Monte Carlo continuations
  (the method: rlint/mining.py);
- ``repair`` (``rlint.identify.repair.identify``) asks the policy to repair each failure and diffs the
  two (the method: rlint/repair.py).

Mode ``oracle`` is a mode of each strategy, filling the same rows: the first error comes from
the task's ground-truth step checker; ``search`` then only estimates the value of the last good
prefix, and for ``repair`` the reference chain from there is the repair (the oracle repair, the
upper bound of the repair family). ``failures`` are the chosen failed rollout rows
(:func:`select_failures`); ``engine`` is started only when a strategy samples.
"""

from __future__ import annotations

from collections import defaultdict

from rlint.identify import repair, search
from rlint.identify.repair import repair_metrics
from rlint.identify.result import Identified

# mine.strategy -> identify(failures, rollouts, engine, task, params, seed, round_id) -> Identified
IDENTIFY = {"search": search.identify, "repair": repair.identify}

__all__ = ["IDENTIFY", "Identified", "identify_metrics", "select_failures"]


def select_failures(rollouts: list[dict], per_problem: int | None, limit: int | None) -> list[dict]:
    """The failed rollouts a round mines: at most ``per_problem`` of each problem, then at most ``limit`` in all, in rollout order.

    Failures left out are not mined (no failure row): credit gives them the plain outcome advantage.

    >>> rows = [{"problem_id": p, "reward": r} for p, r in [("a", 0.0), ("a", 1.0), ("a", 0.0), ("b", None), ("a", 0.0)]]
    >>> [(row["problem_id"], row["reward"]) for row in select_failures(rows, 2, None)]
    [('a', 0.0), ('a', 0.0), ('b', None)]
    """
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for row in rollouts:
        if row["reward"] == 1.0 or (per_problem is not None and taken[row["problem_id"]] >= per_problem):
            continue
        taken[row["problem_id"]] += 1
        chosen.append(row)
    return chosen if limit is None else chosen[:limit]


def identify_metrics(found: Identified) -> dict:
    """The mine stage's counts of one round's identification (``seconds`` and ``round`` aside)."""
    failures, continuations = found.failures, found.continuations
    located = [f for f in failures if f["first_error_step"] is not None]
    with_truth = [f for f in located if f["true_first_error_step"] is not None]
    return {
        "failures": len(failures),
        "failures_located": len(located),
        "continuations": len(continuations),
        "continuations_per_failure": round(len(continuations) / max(1, len(failures)), 3),
        # every generated token of identification, repair attempts included (bench_modes counts this)
        "mining_tokens": sum(f["tokens_spent"] for f in failures),
        "sampling_levels": found.levels,
        "localization_accuracy": round(sum(f["first_error_step"] == f["true_first_error_step"] for f in with_truth) / len(with_truth), 4) if with_truth else None,
        **repair_metrics(failures),
    }
