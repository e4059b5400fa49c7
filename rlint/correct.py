"""Corrections of located failures, pure: branch rows from known continuations and verified repairs.

The correct stage (rlint/stages/correct.py) samples new continuations where no known one
passes through a failure's last good prefix; these functions build and share out the rows.
"""

from __future__ import annotations

from rlint.sequences import of_prefix
from rlint.steps import prefix_offset


def last_good_prefix(failure: dict, parent: dict) -> tuple[int, int]:
    """``(steps, token offset)`` of the failure's last good prefix in its parent's completion."""
    steps = failure["first_error_step"] - 1
    return steps, prefix_offset(parent["step_ends"], steps)


def branch_candidates(failure: dict, parent: dict, known: list[dict]) -> list[dict]:
    """Successful known continuations that pass through the failure's last good prefix.

    ``known`` rows have ``id``, ``sequence`` (full tokens), ``context_len`` (tokens before the
    sampled part), ``logprobs`` of the sampled part and ``reward``. The branch keeps only what
    comes after the last good prefix; duplicates of the same tokens are dropped.
    """
    good_steps, offset = last_good_prefix(failure, parent)
    prefix = of_prefix(parent, offset).context_ids
    width, seen, out = len(prefix), set(), []
    for item in known:
        if item["reward"] != 1.0 or item["context_len"] > width or item["sequence"][:width] != prefix:
            continue
        tokens = item["sequence"][width:]
        if not tokens or tuple(tokens) in seen:
            continue
        seen.add(tuple(tokens))
        out.append({
            "branch_id": item["id"], "failure_id": failure["failure_id"], "parent_rollout_id": parent["rollout_id"],
            "round": failure["round"], "policy_version": failure["policy_version"], "problem_id": failure["problem_id"],
            "branch_step": good_steps, "branch_token_offset": offset, "token_ids": tokens,
            "logprobs": item["logprobs"][width - item["context_len"]:], "completion": None,
            "reward": item["reward"], "value_before": failure["value_before"], "kind": "search",
        })
    return out


def repair_branch(failure: dict, parent: dict) -> dict:
    """The branch row of a failure located by repair: its verified repair, a completion of the problem's own prompt.

    ``logprobs`` are the repair's sampling log-probabilities under the repair prompt (zeros for an
    oracle repair, which was not sampled); the credit stage replaces them with the policy's under
    the original prompt.
    """
    return {
        "branch_id": f"{failure['failure_id']}-repair", "failure_id": failure["failure_id"], "parent_rollout_id": parent["rollout_id"],
        "round": failure["round"], "policy_version": failure["policy_version"], "problem_id": failure["problem_id"],
        "branch_step": 0, "branch_token_offset": 0, "token_ids": list(failure["repair_token_ids"]), "logprobs": list(failure["repair_logprobs"]),
        "completion": failure["repair_completion"], "reward": failure["repair_reward"], "value_before": None, "kind": "repair",
    }


def assign_branches(failure_ids: list[str], candidates: dict[str, list[dict]], max_branches: int) -> dict[str, list[dict]]:
    """Branch rows of each failure: at most ``max_branches``, each continuation used once in the round.

    Failures of one problem that share their last good prefix share its successful
    continuations; a continuation becomes a branch of the first such failure only, so no sample
    is trained twice and every ``branch_id`` is unique.
    """
    claimed: set[str] = set()
    owned = {}
    for failure_id in failure_ids:
        kept = [b for b in candidates.get(failure_id, []) if b["branch_id"] not in claimed][:max_branches]
        claimed.update(b["branch_id"] for b in kept)
        owned[failure_id] = kept
    return owned
