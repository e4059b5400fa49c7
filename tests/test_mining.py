"""Binary-search mining against a brute-force linear scan, and the reuse guarantees."""

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from rlint.mining import Continuation, FailureSearch, PrefixPool, locate_first_errors, prefix_value

PROMPT = (1, 2)


def make_failure(failure_id: str, n_steps: int, step_len: int = 2, problem: str = "p", base: int = 10) -> FailureSearch:
    tokens = tuple(base + i for i in range(n_steps * step_len))
    return FailureSearch(failure_id, problem, PROMPT, tokens, [step_len * (k + 1) for k in range(n_steps)])


def exact_sampler(values_by_prefix, log):
    """Continuations succeed iff the prefix's true value is 1; tokens never match a rollout."""

    def sample(requests):
        log.extend(requests)
        return [Continuation((900, 901), values_by_prefix(key, prefix) == 1.0) for key, prefix in requests]

    return sample


def linear_first_error(values: list[float]) -> int:
    """values[j] = V(prefix j) for j = 0..K; the first j >= 1 whose value is 0."""
    return next(j for j in range(1, len(values)) if values[j] == 0.0)


@given(n_steps=st.integers(1, 40), data=st.data(), m=st.integers(1, 8))
@settings(max_examples=300, deadline=None)
def test_binary_search_equals_linear_scan_and_costs_log_steps(n_steps, data, m):
    first_error = data.draw(st.integers(1, n_steps))
    values = [1.0 if j < first_error else 0.0 for j in range(n_steps + 1)]
    search = make_failure("f", n_steps)
    pool = PrefixPool()
    pool.add(PROMPT + search.token_ids, False, len(PROMPT))
    log = []
    sampler = exact_sampler(lambda key, prefix: values[next(j for j in range(n_steps + 1) if search.prefix(j) == prefix)], log)
    locate_first_errors([search], {"p": pool}, sampler, m, 0.0)
    assert search.hi == linear_first_error(values) == first_error
    assert search.lo == first_error - 1
    # one success proves a prefix good, so a good probe costs at most m and a bad one exactly m
    assert search.continuations_spent <= m * math.ceil(math.log2(n_steps + 1))
    assert search.continuations_spent == len(log)
    linear = make_failure("f", n_steps)
    linear_log = []
    linear_sampler = exact_sampler(lambda key, prefix: values[next(j for j in range(n_steps + 1) if linear.prefix(j) == prefix)], linear_log)
    locate_first_errors([linear], {"p": pool_with(linear)}, linear_sampler, m, 0.0, strategy="linear")
    assert linear.hi == first_error
    # the full scan labels every prefix 0..K-1 and finds the same step, at K probes
    full = make_failure("f", n_steps)
    full_log = []
    full_sampler = exact_sampler(lambda key, prefix: values[next(j for j in range(n_steps + 1) if full.prefix(j) == prefix)], full_log)
    locate_first_errors([full], {"p": pool_with(full)}, full_sampler, m, 0.0, strategy="full")
    assert full.hi == first_error and full.lo == first_error - 1
    assert sorted(full.probe_steps) == list(range(n_steps))
    assert full.probe_verdicts == ["good" if j < first_error else "bad" for j in full.probe_steps]
    assert full.continuations_spent == len(full_log) == n_steps * m  # nothing is known about any prefix beforehand


def pool_with(search):
    pool = PrefixPool()
    pool.add(search.sequence, False, len(PROMPT))
    return pool


@given(n_steps=st.integers(2, 30), data=st.data())
@settings(max_examples=200, deadline=None)
def test_noisy_values_never_sample_a_prefix_twice(n_steps, data):
    first_error = data.draw(st.integers(1, n_steps))
    p_good = data.draw(st.floats(0.05, 1.0))
    seed = data.draw(st.integers(0, 10**6))
    search = make_failure("f", n_steps)
    pool = PrefixPool()
    pool.add(PROMPT + search.token_ids, False, len(PROMPT))
    log = []
    counter = Counter()

    def sample(requests):
        log.extend(requests)
        out = []
        for key, prefix in requests:
            j = next(j for j in range(n_steps + 1) if search.prefix(j) == prefix)
            counter[prefix] += 1
            u = (hash((seed, prefix, counter[prefix])) % 10_000) / 10_000
            out.append(Continuation((900,), j < first_error and u < p_good))
        return out

    locate_first_errors([search], {"p": pool}, sample, 4, 0.0)
    assert search.done and 0 <= search.hi <= n_steps
    assert all(count <= 4 for count in counter.values())  # never more than M samples for a prefix


def test_prefix_shared_with_successful_sibling_needs_no_sample():
    search = make_failure("f", 4)
    pool = PrefixPool()
    pool.add(PROMPT + search.token_ids, False, len(PROMPT))
    pool.add(search.prefix(3) + (77, 78), True, len(PROMPT))  # a successful sibling shares steps 1..3
    log = []
    locate_first_errors([search], {"p": pool}, exact_sampler(lambda k, p: 0.0, log), 8, 0.0)
    assert (search.lo, search.hi) == (3, 4)
    assert log == [] and search.continuations_spent == 0
    assert prefix_value(search, pool, 3) == 1.0 and prefix_value(search, pool, 4) == 0.0


def test_identical_prefixes_of_two_failures_are_sampled_once():
    a = make_failure("a", 3)
    b = FailureSearch("b", "p", PROMPT, a.token_ids[:4] + (55, 56), [2, 4, 6])  # shares steps 1..2 with a
    pool = PrefixPool()
    for f in (a, b):
        pool.add(PROMPT + f.token_ids, False, len(PROMPT))
    log = []
    locate_first_errors([a, b], {"p": pool}, exact_sampler(lambda k, p: 1.0 if len(p) <= len(PROMPT) + 2 else 0.0, log), 3, 0.0)
    assert a.hi == 2 and b.hi == 2
    assert max(Counter(prefix for _, prefix in log).values()) <= 3
    assert a.continuations_spent + b.continuations_spent == len(log)


def test_known_continuations_top_up_to_m():
    search = make_failure("f", 3)
    pool = PrefixPool()
    pool.add(PROMPT + search.token_ids, False, len(PROMPT))
    for _ in range(3):
        pool.add(search.prefix(1) + (900,), False, len(search.prefix(1)))  # three failed continuations of prefix 1 already known
    log = []
    locate_first_errors([search], {"p": pool}, exact_sampler(lambda k, p: 0.0, log), 5, 0.0)
    assert search.probe_steps[0] == 1  # the first bisection point of 3 steps
    assert Counter(prefix for _, prefix in log)[search.prefix(1)] == 2  # 5 - 3 known


def test_unsolvable_prompt_is_reported_as_hi_zero():
    search = make_failure("f", 3)
    pool = PrefixPool()
    pool.add(PROMPT + search.token_ids, False, len(PROMPT))
    locate_first_errors([search], {"p": pool}, exact_sampler(lambda k, p: 0.0, []), 2, 0.0)
    assert search.hi == 0 and search.lo == -1


def test_unsolved_prompt_is_settled_first_for_the_whole_group():
    # 7 failed rollouts pass through the prompt, 6 besides each failure's own: two more (failing)
    # samples settle V(prompt) = 0 for every failure of the group, with no probe of their middle steps
    searches = [make_failure(f"f{i}", 6, base=100 * (i + 1)) for i in range(7)]
    pool = PrefixPool()
    for search in searches:
        pool.add(search.sequence, False, len(PROMPT))
    log = []
    locate_first_errors(searches, {"p": pool}, exact_sampler(lambda key, prefix: 0.0, log), 8, 0.0)
    assert log == [("p", PROMPT)] * 2  # drawn once, for all seven
    assert all(s.hi == 0 and s.probe_steps == [0] for s in searches)
