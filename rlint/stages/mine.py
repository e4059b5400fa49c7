"""mine: locate the first wrong step of every failed rollout.

Two identify strategies behind one interface (:data:`IDENTIFY`, chosen by ``mine.strategy``):
``search`` bisects over steps with Monte Carlo continuations (rlint/mining.py), ``repair`` asks
the policy to repair each failure and diffs the two (rlint/repair.py). ``oracle`` mode takes
the first error from the task's ground-truth step checker: with ``search`` it only estimates the
value of the last good prefix, with ``repair`` the reference chain from there is the repair (the
oracle repair, the upper bound of the repair family); ``outcome`` mode mines nothing (it writes
empty tables).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rlint.config import Params, round_seed
from rlint.data import read_rows, write_rows
from rlint.engine import LazyEngine, SamplingRequest
from rlint.mining import Continuation, FailureSearch, PrefixPool, locate_first_errors, prefix_value
from rlint.stages.common import checkpoint_path, metrics_path, seed_everything, write_json_atomic
from rlint.stages.repair import NO_REPAIR, check_repair_chat, identify_by_oracle_repair, identify_by_repair, repair_metrics
from rlint.steps import prefix_offset
from rlint.tasks import load_task

log = logging.getLogger(__name__)


def build_pools(rollouts: list[dict]) -> dict[str, PrefixPool]:
    """One pool per problem, seeded with the group's rollouts."""
    pools: dict[str, PrefixPool] = defaultdict(PrefixPool)
    for row in rollouts:
        pools[row["problem_id"]].add(tuple(row["prompt_token_ids"]) + tuple(row["token_ids"]), row["reward"] == 1.0, len(row["prompt_token_ids"]))
    return pools


def make_sampler(engine, task, params: Params, answers: dict, prompt_lengths: dict, seed: int):
    """A mining SampleFn: continuations of full-token prefixes, scored by the outcome verifier.

    Each call is one batched generate; calls are seeded ``seed, seed + 1, ...``.
    """
    calls = [0]
    max_total = params.sampling.max_new_tokens

    def sample(requests):
        # one batched call per bisection level; a continuation is cut so that the prefix's
        # completion tokens plus the continuation stay within sampling.max_new_tokens
        budgets = [max(1, max_total - (len(prefix) - prompt_lengths[key])) for key, prefix in requests]
        request = SamplingRequest(
            prompts=[list(prefix) for _, prefix in requests], n=1, temperature=params.mine.temperature,
            top_p=params.sampling.top_p, max_new_tokens=max(budgets), seed=seed + 7919 * calls[0],
        )
        calls[0] += 1
        results = []
        for (problem_key, prefix), budget, (drawn,) in zip(requests, budgets, engine.generate(request, desc="mine")):
            tokens, logprobs = drawn.token_ids[:budget], drawn.logprobs[:budget]
            completion = engine.decode(list(prefix[prompt_lengths[problem_key]:]) + tokens)
            reward = task.reward(completion, answers[problem_key])
            results.append(Continuation(tuple(tokens), reward == 1.0, tuple(logprobs), reward, engine.decode(tokens)))
        return results

    return sample


def failure_searches(rollouts: list[dict]) -> list[FailureSearch]:
    return [
        FailureSearch(
            failure_id=row["rollout_id"], problem_key=row["problem_id"], prompt_ids=tuple(row["prompt_token_ids"]),
            token_ids=tuple(row["token_ids"]), step_ends=list(row["step_ends"]),
        )
        for row in rollouts
        if row["reward"] != 1.0
    ]


def select_failures(searches: list[FailureSearch], per_problem: int | None, limit: int | None) -> list[FailureSearch]:
    """The failures a round mines: at most ``per_problem`` of each problem, then at most ``limit`` in all, in rollout order.

    Failures left out are not mined (no failure row): credit gives them the plain outcome advantage.
    """
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for search in searches:
        if per_problem is not None and taken[search.problem_key] >= per_problem:
            continue
        taken[search.problem_key] += 1
        chosen.append(search)
    return chosen if limit is None else chosen[:limit]


@dataclass
class Identified:
    """What an identify strategy returns: ``failures`` and ``continuations`` rows, and sampling levels used."""

    failures: list[dict]
    continuations: list[dict]
    levels: int = 0


def identify_by_search(params: Params, chosen: list[FailureSearch], rollouts: list[dict], engine, task, seed: int, round_id: int) -> Identified:
    """Search (``mine.search``) over prefix values, or the ground-truth first error in mode ``oracle``."""
    by_id = {row["rollout_id"]: row for row in rollouts}
    pools = build_pools(rollouts)
    # the verifier scores everything after the problem's own prompt (an archived prefix included)
    prompt_lengths = {row["problem_id"]: len(row["prompt_token_ids"]) - row["prefix_token_count"] for row in rollouts}
    answers = {row["problem_id"]: row["answer"] for row in rollouts}
    sample = make_sampler(engine, task, params, answers, prompt_lengths, seed)
    m, threshold = params.mine.continuations_per_probe, params.mine.value_threshold
    levels = 0
    if params.mode == "oracle":
        for search in chosen:
            true_step = by_id[search.failure_id]["true_first_error_step"]
            if true_step is not None and true_step <= search.n_steps:
                search.lo, search.hi = true_step - 1, true_step
        # value of the true last good prefix: top it up to M samples, one batch
        _oracle_values(chosen, pools, sample, m)
    else:
        levels = locate_first_errors(chosen, pools, sample, m, threshold, params.mine.search)
    failures, continuations = mining_rows(chosen, by_id, pools, params.mode, round_id)
    return Identified(failures, continuations, levels)


def identify_by_repair_strategy(params: Params, chosen: list[FailureSearch], rollouts: list[dict], engine, task, seed: int, round_id: int) -> Identified:
    """The policy repairs each failure, or in mode ``oracle`` the reference chain does from the true first error
    (nothing sampled, no engine started); the token difference locates the first error (rlint/stages/repair.py)."""
    by_id = {row["rollout_id"]: row for row in rollouts}
    rows = [by_id[s.failure_id] for s in chosen]
    if params.mode == "oracle":
        from transformers import AutoTokenizer

        return Identified(identify_by_oracle_repair(rows, task, AutoTokenizer.from_pretrained(engine.checkpoint), round_id), [])
    repaired = identify_by_repair(rows, engine, task, params, seed, round_id)
    return Identified(repaired.failures, repaired.attempts)


# mine.strategy -> identify function (params, chosen failures, the round's rollouts, engine, task, seed, round) -> Identified
IDENTIFY = {"search": identify_by_search, "repair": identify_by_repair_strategy}


def run(params: Params, round_id: int, root: Path) -> dict:
    rollouts = read_rows(root, "rollouts", round_id)
    searches = [] if params.mode == "outcome" else select_failures(failure_searches(rollouts), params.mine.failures_per_problem, params.mine.max_failures)
    started = time.monotonic()
    found = Identified([], [])
    if searches:
        task = load_task(params.task, params.limits)
        seed = round_seed(params, round_id, "mine")
        seed_everything(seed)
        strategy = params.mine.strategy  # mode oracle: the ground-truth first error within either strategy
        if strategy == "repair" and params.mode != "oracle":
            from transformers import AutoTokenizer

            check_repair_chat(task, AutoTokenizer.from_pretrained(checkpoint_path(root, round_id - 1)), checkpoint_path(root, round_id - 1))
        engine = LazyEngine(str(checkpoint_path(root, round_id - 1)), params.sampling)  # started only if a failure needs samples
        found = IDENTIFY[strategy](params, searches, rollouts, engine, task, seed, round_id)
        if not engine.started:
            log.info("mine round %d: every failure was decided without sampling (e.g. no sample of its prompt was right); no engine started", round_id)
    failures, continuations = found.failures, found.continuations
    write_rows(root, "failures", round_id, failures)
    write_rows(root, "continuations", round_id, continuations)
    located = [f for f in failures if f["first_error_step"] is not None]
    with_truth = [f for f in located if f["true_first_error_step"] is not None]
    metrics = {
        "round": round_id,
        "failures": len(failures),
        "failures_located": len(located),
        "continuations": len(continuations),
        "continuations_per_failure": round(len(continuations) / max(1, len(failures)), 3),
        # every generated token of identification, repair attempts included (bench_modes counts this)
        "mining_tokens": sum(f["tokens_spent"] for f in failures),
        "sampling_levels": found.levels,
        "localization_accuracy": round(sum(f["first_error_step"] == f["true_first_error_step"] for f in with_truth) / len(with_truth), 4) if with_truth else None,
        **repair_metrics(failures),
        "seconds": round(time.monotonic() - started, 2),
    }
    write_json_atomic(metrics_path(root, "mine", round_id), metrics)
    log.info("mine round %d: %s", round_id, metrics)
    return metrics


def mining_rows(searches: list[FailureSearch], rollouts_by_id: dict, pools: dict[str, PrefixPool], mode: str, round_id: int) -> tuple[list[dict], list[dict]]:
    """Rows of the ``failures`` and ``continuations`` datasets for finished searches."""
    failures, continuations = [], []
    for search in searches:
        row = rollouts_by_id[search.failure_id]
        pool = pools[search.problem_key]
        located = search.n_steps > 0 and search.hi >= 1 and search.done
        if search.n_steps == 0:
            decided_by = "no_steps"
        elif mode == "oracle":
            decided_by = "oracle" if row["true_first_error_step"] is not None else "oracle_none"
            located = row["true_first_error_step"] is not None and row["true_first_error_step"] <= search.n_steps
        elif search.hi == 0:
            decided_by, located = "prompt_unsolved", False
        else:
            decided_by = "probe" if search.continuations_spent else "sibling"
        failures.append({
            "failure_id": search.failure_id, "rollout_id": search.failure_id, "round": round_id,
            "policy_version": round_id - 1, "problem_id": search.problem_key, "n_steps": search.n_steps,
            "first_error_step": search.hi if located else None,
            "value_before": prefix_value(search, pool, search.lo) if located else None,
            # oracle mode does not sample after the true error: the checker says it is wrong, so 0
            "value_after": (prefix_value(search, pool, search.hi) or 0.0) if located else None,
            "probe_steps": search.probe_steps, "probe_values": search.probe_values, "decided_by": decided_by,
            "continuations_spent": search.continuations_spent, "tokens_spent": search.tokens_spent,
            "true_first_error_step": row["true_first_error_step"], **NO_REPAIR,
        })
        counters: dict[int, int] = defaultdict(int)
        for steps, cont in search.drawn:
            index = counters[steps]
            counters[steps] += 1
            offset = prefix_offset(search.step_ends, steps)
            continuations.append({
                "continuation_id": f"{search.failure_id}-p{steps}-c{index}", "failure_id": search.failure_id,
                "round": round_id, "policy_version": round_id - 1, "prefix_steps": steps, "prefix_token_count": offset,
                "token_ids": list(cont.token_ids), "logprobs": list(cont.logprobs),
                "completion": cont.text, "reward": cont.reward, "stage": "mine",
            })
    return failures, continuations


def _oracle_values(searches, pools, sample, m: int) -> None:
    """Oracle mode: sample the true last good prefix up to ``m`` known sequences."""
    wanted = []
    for search in searches:
        if search.lo >= 0 and search.done:
            n, _ = search.stats(pools[search.problem_key], search.lo)
            wanted.extend([(search, search.lo)] * max(0, m - n))
    if not wanted:
        return
    results = sample([(s.problem_key, s.prefix(steps)) for s, steps in wanted])
    for (search, steps), cont in zip(wanted, results):
        pools[search.problem_key].add(search.prefix(steps) + cont.token_ids, cont.success, len(search.prefix(steps)))
        search.continuations_spent += 1
        search.tokens_spent += len(cont.token_ids)
        search.drawn.append((steps, cont))
