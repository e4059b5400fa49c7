"""Identify by search: bisect over steps with Monte Carlo continuations (the method: rlint/mining.py).

Mode ``oracle``: the task's ground-truth step checker gives the first error, and search only
estimates the value of the last good prefix (topped up to ``mine.continuations_per_probe``
samples); nothing else of the search runs.
"""

from __future__ import annotations

from collections import defaultdict

from rlint.config import Params
from rlint.engine import SamplingRequest
from rlint.identify.result import Identified, failure_row
from rlint.mining import Continuation, FailureSearch, PrefixPool, locate_first_errors, prefix_value
from rlint.sequences import of_rollout
from rlint.steps import prefix_offset


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


def failure_searches(failures: list[dict]) -> list[FailureSearch]:
    """The search state of each failed rollout row."""
    return [
        FailureSearch(
            failure_id=row["rollout_id"], problem_key=row["problem_id"], prompt_ids=tuple(row["prompt_token_ids"]),
            token_ids=tuple(row["token_ids"]), step_ends=list(row["step_ends"]),
        )
        for row in failures
    ]


def identify(failures: list[dict], rollouts: list[dict], engine, task, params: Params, seed: int, round_id: int) -> Identified:
    """Search (``mine.search``) over prefix values, or the ground-truth first error in mode ``oracle``."""
    searches = failure_searches(failures)
    pools = build_pools(rollouts)
    # the verifier scores everything after the problem's own prompt (an archived prefix included)
    prompt_lengths = {row["problem_id"]: len(of_rollout(row).prompt_ids) for row in rollouts}
    answers = {row["problem_id"]: row["answer"] for row in rollouts}
    sample = make_sampler(engine, task, params, answers, prompt_lengths, seed)
    m = params.mine.continuations_per_probe
    levels = 0
    if params.mode == "oracle":
        for search, row in zip(searches, failures):
            true_step = row["true_first_error_step"]
            if true_step is not None and true_step <= search.n_steps:
                search.lo, search.hi = true_step - 1, true_step
        # value of the true last good prefix: top it up to M samples, one batch
        _oracle_values(searches, pools, sample, m)
    else:
        levels = locate_first_errors(searches, pools, sample, m, params.mine.value_threshold, params.mine.search)
    failure_rows, continuations = mining_rows(searches, failures, pools, params.mode, round_id)
    return Identified(failure_rows, continuations, levels)


def mining_rows(searches: list[FailureSearch], failures: list[dict], pools: dict[str, PrefixPool], mode: str, round_id: int) -> tuple[list[dict], list[dict]]:
    """Rows of the ``failures`` and ``continuations`` datasets for finished searches (``failures``: their rollout rows, in order)."""
    failure_rows, continuations = [], []
    for search, row in zip(searches, failures):
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
        failure_rows.append(failure_row(
            row, round_id, decided_by, search.hi if located else None, search.continuations_spent, search.tokens_spent,
            value_before=prefix_value(search, pool, search.lo) if located else None,
            # oracle mode does not sample after the true error: the checker says it is wrong, so 0
            value_after=(prefix_value(search, pool, search.hi) or 0.0) if located else None,
            probe_steps=search.probe_steps, probe_values=search.probe_values,
        ))
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
    return failure_rows, continuations


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
