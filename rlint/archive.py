"""Archive: hard start states that carry over from round to round.

A failure that mining could not locate, or that correction could not fix within its budget,
is a hard case. Its last good prefix (the prompt plus the steps before the first error; the
prompt alone when no step was shown good) becomes an archive entry. Later rounds restart a
share of their batch from open entries (``archive.replay_share``): the policy samples a group
from ``prompt + prefix``, and that group is mined, corrected and trained on like any other.

An entry is ``solved`` in the first round where one of its replays reaches the right answer or
one of its replayed failures gets a corrected branch; it is ``retired`` after
``archive.max_replays`` replays without that. The archive of round k is a full snapshot: every
entry ever archived, with its state after round k.

The functions here are pure (rows in, rows out); ``rlint/stages/archive.py`` does the I/O.
"""

from __future__ import annotations

from collections import defaultdict

from rlint.sequences import of_prefix
from rlint.steps import prefix_offset

HARD = ("uncorrected", "unlocated")  # corrections.status values that make a failure a hard case


def new_entries(rollouts: list[dict], failures: list[dict], corrections: list[dict], round_id: int) -> list[dict]:
    """Archive entries for the hard failures of one round.

    Failures of replayed rollouts add nothing (their entry is already in the archive). Several
    failures of one problem with the same last good prefix give one entry, the one with the
    smallest failure id.
    """
    by_id = {row["rollout_id"]: row for row in rollouts}
    status = {row["failure_id"]: row["status"] for row in corrections}
    entries: dict[tuple[str, tuple[int, ...]], dict] = {}
    for failure in sorted(failures, key=lambda f: f["failure_id"]):
        reason = status.get(failure["failure_id"])
        rollout = by_id[failure["rollout_id"]]
        if reason not in HARD or rollout["archive_id"] is not None:
            continue
        steps = failure["first_error_step"] - 1 if failure["first_error_step"] is not None else 0
        offset = prefix_offset(rollout["step_ends"], steps)
        context = of_prefix(rollout, offset).context_ids
        key = (rollout["problem_id"], tuple(context))
        if key in entries:
            continue
        entries[key] = {
            "archive_id": failure["failure_id"], "round": round_id, "origin_round": round_id,
            "problem_id": rollout["problem_id"], "failure_id": failure["failure_id"],
            "prompt": rollout["prompt"], "answer": rollout["answer"],
            "context_token_ids": context, "archived_prefix_token_count": offset, "prefix_steps": steps,
            "reason": reason, "status": "open", "replays": 0, "solved_round": None,
            "true_first_error_step": rollout["true_first_error_step"],
        }
    return list(entries.values())


def update_archive(previous: list[dict], rollouts: list[dict], failures: list[dict], corrections: list[dict], round_id: int,
                   max_replays: int) -> list[dict]:
    """The archive snapshot after round ``round_id``: the previous one, updated by this round's
    replays, plus this round's hard cases.

    ``rollouts`` rows carry ``archive_id`` (None for fresh problems); ``corrections`` rows carry
    ``failure_id`` and ``status``. Returns rows of the ``archive`` dataset.

    >>> entry = {"archive_id": "a", "status": "open", "replays": 0, "solved_round": None}
    >>> replay = {"rollout_id": "r2-p-s0", "archive_id": "a", "reward": 1.0}
    >>> update_archive([entry], [replay], [], [], 2, 3)[0]["status"]
    'solved'
    """
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rollouts:
        if row["archive_id"] is not None:
            groups[row["archive_id"]].append(row)
    corrected = {row["failure_id"] for row in corrections if row["status"] == "corrected"}
    out = []
    for entry in previous:
        entry = {**entry, "round": round_id}
        replays = groups.get(entry["archive_id"], [])
        if replays and entry["status"] == "open":
            entry["replays"] += 1
            if any(r["reward"] == 1.0 or r["rollout_id"] in corrected for r in replays):
                entry["status"], entry["solved_round"] = "solved", round_id
            elif entry["replays"] >= max_replays:
                entry["status"] = "retired"
        out.append(entry)
    known = {entry["archive_id"] for entry in out}
    out.extend(e for e in new_entries(rollouts, failures, corrections, round_id) if e["archive_id"] not in known)
    return out


def select_replays(entries: list[dict], count: int) -> list[dict]:
    """The open entries a round restarts from: least replayed first, then oldest, at most one
    per problem (so each replayed group is its own problem), ``count`` at most.

    >>> rows = [{"archive_id": i, "problem_id": p, "status": "open", "replays": r, "origin_round": 1}
    ...         for i, p, r in [("a", "x", 1), ("b", "x", 0), ("c", "y", 0), ("d", "z", 0)]]
    >>> [e["archive_id"] for e in select_replays(rows, 2)]
    ['b', 'c']
    """
    chosen, problems = [], set()
    for entry in sorted((e for e in entries if e["status"] == "open"), key=lambda e: (e["replays"], e["origin_round"], e["archive_id"])):
        if len(chosen) == count:
            break
        if entry["problem_id"] in problems:
            continue
        problems.add(entry["problem_id"])
        chosen.append(entry)
    return chosen
