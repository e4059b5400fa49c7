"""correct: corrected branches from the last good prefix of each located failure.

A failure located by repair (``mine.strategy: repair``; the oracle's repair in mode ``oracle``) has
its verified repair as its one branch (``kind`` "repair", pointing to the parent failure), so it
needs no sampling here.

Successful continuations already drawn by mining that pass through the last good prefix are
branches for free; failures with none get up to ``correct.max_samples`` new continuations
(one batched call for all of them). Failures still without a branch are recorded as
"uncorrected": the hard cases.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

from transformers import AutoTokenizer

from rlint.config import Params, round_seed
from rlint.data import read_rows, write_rows
from rlint.engine import SamplingRequest, load_engine
from rlint.repair import REPAIR_LOCATED
from rlint.stages.common import checkpoint_path, metrics_path, seed_everything, write_json_atomic
from rlint.sequences import of_continuation, of_prefix
from rlint.steps import prefix_offset
from rlint.tasks import load_task

log = logging.getLogger(__name__)


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


def run(params: Params, round_id: int, root: Path) -> dict:
    rollouts = {row["rollout_id"]: row for row in read_rows(root, "rollouts", round_id)}
    failures = read_rows(root, "failures", round_id)
    continuations = read_rows(root, "continuations", round_id)
    started = time.monotonic()
    known: dict[str, list[dict]] = defaultdict(list)  # problem_id -> continuations as full sequences
    for cont in continuations:
        if cont["stage"] == "repair":  # a repair attempt continues the repair prompt, not a prefix
            continue
        parent = rollouts[cont["failure_id"]]
        view = of_continuation(parent, cont)
        known[parent["problem_id"]].append({
            "id": cont["continuation_id"], "sequence": view.full_ids, "context_len": len(view.context_ids),
            "logprobs": list(cont["logprobs"]), "reward": cont["reward"],
        })
    located = [f for f in failures if f["first_error_step"] is not None]
    # a failure located by repair is corrected by its own verified repair; search-located ones by continuations
    branches = {f["failure_id"]: [repair_branch(f, rollouts[f["failure_id"]])] if f["decided_by"] in REPAIR_LOCATED
                else branch_candidates(f, rollouts[f["failure_id"]], known[f["problem_id"]]) for f in located}
    spent: dict[str, int] = {}
    spent_tokens = 0
    need = [f for f in located if not branches[f["failure_id"]]]
    if need and params.correct.max_samples > 0:
        task = load_task(params.task, params.limits)
        seed = round_seed(params, round_id, "correct")
        seed_everything(seed)
        engine = load_engine(str(checkpoint_path(root, round_id - 1)), params.sampling)
        contexts = []
        for failure in need:
            parent = rollouts[failure["failure_id"]]
            steps, offset = last_good_prefix(failure, parent)
            contexts.append((of_prefix(parent, offset), steps))
        request = SamplingRequest(
            prompts=[view.context_ids for view, _ in contexts], n=params.correct.max_samples, temperature=params.sampling.temperature,
            top_p=params.sampling.top_p, max_new_tokens=params.sampling.max_new_tokens, seed=seed,
        )
        for failure, (view, steps), samples in zip(need, contexts, engine.generate(request, desc="correct")):
            parent = rollouts[failure["failure_id"]]
            spent[failure["failure_id"]] = len(samples)
            spent_tokens += sum(len(sample.token_ids) for sample in samples)
            drawn = []
            for i, sample in enumerate(samples):
                sampled = view.with_completion(sample.token_ids)
                drawn.append({
                    "id": f"{failure['failure_id']}-p{steps}-k{i}", "sequence": sampled.full_ids,
                    "context_len": len(view.context_ids), "logprobs": sample.logprobs,
                    "reward": task.reward(engine.decode(sampled.scored_ids), parent["answer"]),
                })
            branches[failure["failure_id"]] = branch_candidates(failure, parent, drawn)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_path(root, round_id - 1)) if located else None
    rows, corrections = [], []
    owned = assign_branches([f["failure_id"] for f in failures], branches, params.correct.max_branches)
    for failure in failures:
        kept = owned[failure["failure_id"]]
        for branch in kept:
            if branch["kind"] == "repair":
                continue
            branch["completion"] = tokenizer.decode(branch["token_ids"], skip_special_tokens=True)
        rows.extend(kept)
        # corrected: a verified branch grows from its last good prefix (it may be one an earlier failure with the same prefix owns)
        status = "unlocated" if failure["first_error_step"] is None else ("corrected" if branches.get(failure["failure_id"]) else "uncorrected")
        corrections.append({
            "failure_id": failure["failure_id"], "round": round_id, "status": status,
            "samples_spent": spent.get(failure["failure_id"], 0), "n_branches": len(kept),
        })
    write_rows(root, "branches", round_id, rows)
    write_rows(root, "corrections", round_id, corrections)
    n_located = max(1, len(located))
    metrics = {
        "round": round_id,
        "corrected_branches": len(rows),
        "failures_corrected": sum(c["status"] == "corrected" for c in corrections),
        "correction_yield": round(sum(c["status"] == "corrected" for c in corrections) / n_located, 4),
        "correction_samples": sum(spent.values()),
        "correction_tokens": spent_tokens,
        "seconds": round(time.monotonic() - started, 2),
    }
    write_json_atomic(metrics_path(root, "correct", round_id), metrics)
    log.info("correct round %d: %s", round_id, metrics)
    return metrics
