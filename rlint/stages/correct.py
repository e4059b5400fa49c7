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
from rlint.correct import assign_branches, branch_candidates, last_good_prefix, repair_branch
from rlint.data import read_rows, write_rows
from rlint.engine import SamplingRequest, load_engine
from rlint.repair import REPAIR_LOCATED
from rlint.stages.common import checkpoint_path, metrics_path, seed_everything, write_json_atomic
from rlint.sequences import of_continuation, of_prefix
from rlint.tasks import load_task

log = logging.getLogger(__name__)


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
