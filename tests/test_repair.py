"""Identify by repair, the pure part: alignment, the located step, the gates, the choice, the repair_diff credit."""

import difflib
import random

import numpy as np
import pytest

from rlint.config import CreditConfig
from rlint.credit import ESTIMATORS, BranchInput, CreditInputs, LocatedFailure
from rlint.repair import align, choose_repair, flatten_spans, gate, oracle_repair, reference_tail, span_mask, step_of, unflatten_spans


def ids(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_a_wrong_line_is_located_at_its_step():
    failed = "12+7=19\n19*3=56\n56-5=51\nA:51\n"
    repaired = "12+7=19\n19*3=57\n57-5=52\nA:52\n"
    a = align(ids(failed), ids(repaired))
    ends = [i + 1 for i, c in enumerate(failed) if c == "\n"]
    assert a.first_change == failed.index("56")  + 1  # "5" of 56 is kept, "6" changed
    assert step_of(ends, a.first_change) == 2
    changed = "".join(c for c, m in zip(failed, span_mask(len(failed), a.failed_spans)) if m)
    assert changed == "6" + "6" + "1" + "1"  # the wrong value, its copy, and what followed from it
    assert a.changed_tokens == 4 and a.edit_size == pytest.approx(4 / len(failed))
    repaired_changed = "".join(c for c, m in zip(repaired, span_mask(len(repaired), a.repaired_spans)) if m)
    assert repaired_changed == "7722"


def test_insertions_deletions_and_identity():
    a = align([1, 2, 3], [1, 2, 7, 7, 3])  # insertion before token 2
    assert a.failed_spans == ((2, 3),) and a.repaired_spans == ((2, 4),) and a.changed_tokens == 2
    a = align([1, 2, 3, 4], [1, 4])  # deletion
    assert a.failed_spans == ((1, 3),) and a.repaired_spans == () and a.first_change == 1
    a = align([1, 2], [1, 2, 5])  # insertion at the end marks the last token
    assert a.failed_spans == ((1, 2),) and a.first_change == 2
    a = align([4, 4], [4, 4])
    assert a.failed_spans == () and a.first_change is None and a.edit_size == 0


def test_alignment_agrees_with_difflib_over_random_pairs():
    rng = random.Random(0)
    for _ in range(300):
        failed = [rng.randrange(4) for _ in range(rng.randrange(1, 20))]
        repaired = list(failed)
        for _ in range(rng.randrange(0, 4)):
            repaired[rng.randrange(len(repaired))] = rng.randrange(4)
        a = align(failed, repaired)
        head = next((i for i, (x, y) in enumerate(zip(failed, repaired)) if x != y), min(len(failed), len(repaired)))
        ops = [op for op in difflib.SequenceMatcher(None, failed[head:], repaired[head:], autojunk=False).get_opcodes() if op[0] != "equal"]
        # unchanged tokens are the same on both sides, in order
        kept_f = [t for t, m in zip(failed, span_mask(len(failed), a.failed_spans)) if not m]
        kept_r = [t for t, m in zip(repaired, span_mask(len(repaired), a.repaired_spans)) if not m]
        if not any(op[0] == "insert" for op in ops):
            assert kept_f == kept_r
        assert (a.first_change is None) == (failed == repaired)
        if a.first_change is not None:
            assert a.first_change == head  # the first change is the first token where the two differ
        assert unflatten_spans(flatten_spans(a.failed_spans)) == a.failed_spans


def test_the_oracle_repair_keeps_the_good_steps_and_takes_the_reference_from_the_first_error():
    failed = "12+7=19\n19*3=56\n56-5=51\nA:51\n"  # true first error: step 2
    reference = "12+7=19\n19*3=57\n57-5=52\nA:52\n"
    eos = 0
    tail = reference_tail(reference, 1, "\n")
    assert tail == "19*3=57\n57-5=52\nA:52\n"
    repaired, a = oracle_repair(ids(failed) + [eos], 8, ids(tail), eos)  # keep the 8 tokens of step 1
    assert repaired == ids(reference) + [eos]
    # by hand: the wrong "6" of 56 (offset 14), its copy (17) and the "1" of both 51s (22, 27); eos is offset 29
    assert a.failed_spans == ((14, 15), (17, 18), (22, 23), (27, 28)) and a.repaired_spans == a.failed_spans
    assert a.first_change == 14 and step_of([8, 16, 24, 29], a.first_change) == 2
    assert a.changed_tokens == 4 and a.edit_size == pytest.approx(4 / 30)
    # a missing line: every written step is right; the reference adds the rest where eos was
    short = "12+7=19\n19*3=57\n"
    repaired, a = oracle_repair(ids(short) + [eos], 16, ids(reference_tail(reference, 2, "\n")), eos)
    assert repaired == ids(reference) + [eos] and a.failed_spans == ((16, 17),) and step_of([8, 16], a.first_change) == 2


def test_step_of_the_first_change():
    assert [step_of([3, 5, 8], t) for t in range(9)] == [1, 1, 1, 2, 2, 3, 3, 3, 3]
    assert step_of([], 0) is None


def test_gates_and_the_choice_of_the_smallest_verified_edit():
    small, big = align([1, 2, 3, 4], [1, 2, 3, 9]), align([1, 2, 3, 4], [1, 9, 9, 9])
    assert gate(1.0, small, 0.3) is None
    assert gate(None, small, 0.3) == "unverified" and gate(1.0, big, 0.3) == "rewrite"
    assert choose_repair([1.0, 1.0], [big, small], 1.0) == (1, "repair")
    assert choose_repair([1.0, 1.0], [small, small], 1.0) == (0, "repair")  # the earliest on a tie
    assert choose_repair([1.0, 0.0], [big, small], 0.3) == (None, "rewrite")
    assert choose_repair([], [], 0.3) == (None, "no_attempts")


def _round():
    # group p: rollout 0 right, rollout 1 failed with a verified repair, rollout 2 failed, unrepaired
    return CreditInputs(
        rewards=np.array([1.0, 0.0, 0.0]), group_ids=np.array(["p", "p", "p"]), n_tokens=[4, 6, 4],
        step_ends=[[2, 4], [3, 6], [2, 4]],
        failures={1: LocatedFailure(1, 1.0, 0.0, changed=((1, 2), (4, 5)))},
        branches=[BranchInput(1, 5, 1.0, 0.0, "repair", changed=((1, 2), (3, 4)))],
    )


def test_repair_diff_by_hand():
    cfg = CreditConfig(estimator="repair_diff")
    credit = ESTIMATORS["repair_diff"].fn(_round(), cfg)
    rollouts, branches = credit.rollouts, credit.branches
    a_right, a_wrong = 2 / 3 / (np.sqrt(2) / 3 + 1e-6), -1 / 3 / (np.sqrt(2) / 3 + 1e-6)
    np.testing.assert_allclose(rollouts[0][0], [a_right] * 4, rtol=1e-5)  # success keeps GRPO
    np.testing.assert_allclose(rollouts[2][0], [a_wrong] * 4, rtol=1e-5)  # unrepaired failure keeps GRPO
    adv, w = rollouts[1]
    # lambda = 1: changed tokens -(1 - 0) = -1; the change at token 4 is in step 2, after the first changed step: weight 0
    assert adv.tolist() == [0, -1, 0, 0, -1, 0] and w.tolist() == [0, 1, 0, 0, 0, 0]
    adv, w = branches[0]
    assert adv.tolist() == [1.0] * 5 and w.tolist() == [1, 1, 1, 1, 1]  # repair_unchanged_weight 1
    cfg = CreditConfig(estimator="repair_diff", process_weight=0.5, unchanged_weight=0.25, after_error_weight=0.5, repair_unchanged_weight=0.0,
                       branch_weight=2.0, epsilon=1e-9)
    credit = ESTIMATORS["repair_diff"].fn(_round(), cfg)
    rollouts, branches = credit.rollouts, credit.branches
    adv, w = rollouts[1]
    a = -1 / 3 / (np.sqrt(2) / 3 + 1e-9)
    np.testing.assert_allclose(adv, [0.5 * a, -0.5 + 0.5 * a, 0.5 * a, 0.5 * a, -0.5 + 0.5 * a, 0.5 * a], rtol=1e-5)
    assert w.tolist() == [0.25, 1, 0.25, 0.25, 0.5, 0.25]
    adv, w = branches[0]
    assert adv.tolist() == [2.0] * 5 and w.tolist() == [0, 1, 0, 1, 0]


def test_repair_diff_equals_internalized_without_repairs():
    inputs = CreditInputs(rewards=np.array([1.0, 0.0]), group_ids=np.array([0, 0]), n_tokens=[3, 4], step_ends=[[3], [2, 4]],
                          failures={1: LocatedFailure(2, 0.5, 0.0)}, branches=[BranchInput(1, 2, 1.0, 0.5)])
    cfg = CreditConfig(estimator="repair_diff")
    got, expected = ESTIMATORS["repair_diff"].fn(inputs, cfg), ESTIMATORS["internalized"].fn(inputs, cfg)
    for (a, w), (b, v) in zip(got.rollouts + got.branches, expected.rollouts + expected.branches):
        assert a.tolist() == b.tolist() and w.tolist() == v.tolist()
