"""The math verifier is bounded in time in any thread: a cost model over the whole expression, and a worker process killed past a limit."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from rlint.tasks.bounded import HARD_TIMEOUT_S, MAX_TERMS, BoundedVerifier, bounded_reward, expression_cost
from rlint.tasks.dataset import math_answer_reward

PARSE_MARGIN_S = 2.0  # parsing both answers and the cost model, on a loaded 2-core machine
BOUND_S = HARD_TIMEOUT_S + PARSE_MARGIN_S


@pytest.fixture(scope="module", autouse=True)
def started_worker():
    """The worker starts once per process (seconds, not charged to any answer's limit)."""
    bounded_reward("1", "1")


def _off_main_thread(completion: str, reference: str = "42") -> tuple[float | None, float]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        reward = pool.submit(math_answer_reward, completion, reference).result(timeout=60)
        return reward, time.monotonic() - started


def test_the_product_of_powers_is_unscorable_at_once_in_a_thread():
    """Each power alone is within the cost model's limits; their product is not (issue 19: no return in 60 s before)."""
    reward, seconds = _off_main_thread("\\boxed{(a+b+c+d+e+f+g+h+1)^{10}(a+b+c+d+e+f+g+h+i+1)^{10}}")
    assert reward is None and seconds < BOUND_S, seconds


def test_cost_model_multiplies_terms_of_a_product():
    a, b = sympy.symbols("a b")
    one, _ = expression_cost((a + b + 1) ** 10)
    both, _ = expression_cost(sympy.Mul((a + b + 1) ** 10, (a + 2 * b + 1) ** 10, evaluate=False))
    assert one == 66 and both == 66 * 66 > MAX_TERMS
    _, digits = expression_cost(sympy.factorial(sympy.Integer(1000), evaluate=False))
    assert 2_500 < digits < 3_500  # 1000! has 2,568 digits


def test_the_worker_is_killed_past_its_limit_and_restarted():
    verifier = BoundedVerifier(timeout_s=0.3)
    try:
        assert verifier.reward("2", "2") == 1.0  # starts the worker (not charged to the limit)
        started = time.monotonic()
        assert verifier.reward("(a+b+2)^{30}", "(1+a+b)^{30}+1") is None  # about 2 s of sympy even when warm: killed
        assert time.monotonic() - started < 0.3 + 0.5
        assert verifier.reward("\\frac{1}{2}", "0.5") == 1.0  # a fresh worker
    finally:
        verifier.close()


LEAF = st.one_of(st.integers(0, 2000).map(str), st.sampled_from(list("abcdefghi")))
TREE = st.recursive(LEAF, lambda inner: st.one_of(
    st.tuples(inner, inner).map(lambda t: f"({t[0]}+{t[1]})"),
    st.tuples(inner, inner).map(lambda t: f"{t[0]} \\cdot {t[1]}"),
    st.tuples(inner, inner).map(lambda t: f"({t[0]})({t[1]})"),
    st.tuples(inner, st.integers(1, 40)).map(lambda t: f"({t[0]})^{{{t[1]}}}"),
    st.tuples(inner, inner).map(lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}"),
    st.integers(0, 3000).map(lambda n: f"({n}!)"),
), max_leaves=10)


@settings(max_examples=25, deadline=timedelta(seconds=BOUND_S * 2))
@given(expression=TREE, reference=st.one_of(st.just("42"), TREE))
def test_fuzzed_expression_trees_are_bounded_off_the_main_thread(expression, reference):
    reward, seconds = _off_main_thread(f"The answer is \\boxed{{{expression}}}", reference)
    assert reward in (0.0, 1.0, None)
    assert seconds < BOUND_S, (seconds, expression, reference)
