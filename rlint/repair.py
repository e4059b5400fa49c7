"""Identify by repair: the policy repairs its own failure, and the token difference is the process signal.

The seed paper (arXiv 2605.05226 v2, "IOP") asks the policy for a minimally edited repair of a
failed attempt, verifies the repair with the outcome verifier, and aligns the two token
sequences: the changed spans are where the failure went wrong. This module is the pure part:

- :func:`align`: a token-level diff (common prefix and suffix, then ``difflib.SequenceMatcher``
  with ``autojunk=False`` on the rest) of the
  failed and the repaired completion: changed spans on both sides, the edit size (changed tokens
  over failed tokens) and the failed token where the first change starts;
- :func:`step_of`: the step (1-based, from the failed rollout's step ends) holding a token, so
  the first change gives a located first error comparable with search's;
- :func:`repair_failure_token_advantages`, :func:`repair_token_advantages`: the per-token
  credit schemes of the ``repair_diff`` estimator (rlint/credit.py);
- :func:`gate` and :func:`choose_repair`: which attempts count (verified, a small edit, a failed
  trajectory not cut by the length limit) and which one of a failure's attempts is kept (the
  verified one with the smallest edit; the earliest on a tie);
- :func:`reference_tail`, :func:`oracle_repair`: the oracle repair (mode ``oracle`` with
  ``mine.strategy: repair``), the upper bound of this family: the failure's tokens before its true
  first error, then the reference chain from there, diffed by :func:`align` like a self-repair.

Departures from the paper: a pure insertion (the repair adds tokens the failure lacks) marks the
one failed token at the insertion point, the token the policy wrote where the missing text goes;
a failure cut by the length limit is not repaired at all (its ending is unknown, so a diff against
it would mark the cut as an error).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from rlint.steps import prefix_offset, step_char_ends

# decided_by of a failure located by a repair: the policy's own ("repair") or the oracle's ("oracle_repair");
# correct turns its repair into a branch, credit diffs the two
REPAIR_LOCATED = frozenset({"repair", "oracle_repair"})

Spans = tuple[tuple[int, int], ...]  # half-open token ranges [start, end)


@dataclass(frozen=True)
class Alignment:
    """The diff of a failed completion (F tokens) and its repair (R tokens)."""

    failed_spans: Spans  # changed ranges of the failed completion, within [0, F]
    repaired_spans: Spans  # changed ranges of the repair, within [0, R]
    changed_tokens: int  # sum over edits of max(failed tokens, repaired tokens) they touch
    edit_size: float  # changed_tokens / max(F, 1)
    first_change: int | None  # failed token offset where the first edit starts; None when identical


def align(failed: list[int] | tuple[int, ...], repaired: list[int] | tuple[int, ...]) -> Alignment:
    """Token-level diff of ``failed`` (F,) and ``repaired`` (R,) completion ids.

    The first change is always the first token where the two differ (the common prefix and suffix
    are taken out before ``difflib.SequenceMatcher`` aligns the rest).

    A replaced or deleted range is a changed span on the failed side; a replaced or inserted
    range is one on the repaired side. A pure insertion at failed offset ``i`` marks failed token
    ``[i, i + 1)`` (clipped to F). Spans on one side never overlap and are in order.

    >>> a = align([1, 2, 3, 4, 5], [1, 2, 9, 4, 5, 6])
    >>> a.failed_spans, a.repaired_spans, a.changed_tokens, a.edit_size, a.first_change
    (((2, 3), (4, 5)), ((2, 3), (5, 6)), 2, 0.4, 2)
    >>> align([1, 2], [1, 2]).first_change is None
    True
    """
    failed, repaired = list(failed), list(repaired)
    # the common prefix and suffix are matched first, as diff tools do: the longest-block-first
    # matcher could otherwise pair a later line of one side with an earlier line of the other
    # (likely over a small vocabulary) and report a change inside the common prefix
    head = 0
    while head < min(len(failed), len(repaired)) and failed[head] == repaired[head]:
        head += 1
    tail = 0
    while tail < min(len(failed), len(repaired)) - head and failed[-1 - tail] == repaired[-1 - tail]:
        tail += 1
    matcher = difflib.SequenceMatcher(None, failed[head:len(failed) - tail], repaired[head:len(repaired) - tail], autojunk=False)
    failed_spans: list[tuple[int, int]] = []
    repaired_spans: list[tuple[int, int]] = []
    changed, first = 0, None
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        i1, i2, j1, j2 = i1 + head, i2 + head, j1 + head, j2 + head
        first = i1 if first is None else first
        changed += max(i2 - i1, j2 - j1)
        if j2 > j1:
            repaired_spans.append((j1, j2))
        start, end = (i1, i2) if i2 > i1 else (min(i1, len(failed) - 1), min(i1, len(failed) - 1) + 1)
        if len(failed) and start >= 0:
            if failed_spans and failed_spans[-1][1] >= start:  # an insertion right after a replacement: merge
                failed_spans[-1] = (failed_spans[-1][0], max(end, failed_spans[-1][1]))
            else:
                failed_spans.append((start, end))
    return Alignment(tuple(failed_spans), tuple(repaired_spans), changed, changed / max(len(failed), 1), first)


def step_of(step_ends: list[int], token: int) -> int | None:
    """The 1-based step holding completion token ``token``; a token after the last step (eos) belongs to the last step.

    step_ends: exclusive end of each step (len K). Returns None when there are no steps.

    >>> step_of([6, 10], 0), step_of([6, 10], 5), step_of([6, 10], 6), step_of([6, 10], 11), step_of([], 3)
    (1, 1, 2, 2, None)
    """
    for index, end in enumerate(step_ends):
        if token < end:
            return index + 1
    return len(step_ends) or None


def span_mask(n_tokens: int, spans: Spans) -> list[bool]:
    """(T,) True on tokens inside any span.

    >>> span_mask(5, ((1, 2), (3, 5)))
    [False, True, False, True, True]
    """
    mask = [False] * n_tokens
    for start, end in spans:
        for t in range(max(start, 0), min(end, n_tokens)):
            mask[t] = True
    return mask


def flatten_spans(spans: Spans) -> list[int]:
    """Spans as the Parquet column stores them: ``[start0, end0, start1, end1, ...]``."""
    return [x for span in spans for x in span]


def unflatten_spans(flat: list[int] | None) -> Spans:
    """Inverse of :func:`flatten_spans` (None: no spans).

    >>> unflatten_spans([2, 3, 4, 5])
    ((2, 3), (4, 5))
    """
    flat = list(flat or [])
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2))


# -- gates ------------------------------------------------------------------------------------------
def gate(reward: float | None, alignment: Alignment, max_edit: float) -> str | None:
    """Why one repair attempt is refused, or None when it counts.

    ``"unverified"``: the verifier did not give 1; ``"unchanged"``: nothing was edited;
    ``"rewrite"``: the edit size is above ``max_edit`` (a rewrite is not a repair).

    >>> ok = align([1, 2, 3, 4], [1, 2, 9, 4])
    >>> gate(1.0, ok, 0.5), gate(0.0, ok, 0.5), gate(1.0, ok, 0.2), gate(1.0, align([1], [1]), 0.5)
    (None, 'unverified', 'rewrite', 'unchanged')
    """
    if reward != 1.0:
        return "unverified"
    if alignment.first_change is None:
        return "unchanged"
    if alignment.edit_size > max_edit:
        return "rewrite"
    return None


def repairable(finish_reason: str) -> bool:
    """Gate on the failed trajectory itself: one cut by the length limit is not repaired."""
    return finish_reason != "length"


def choose_repair(rewards: list[float | None], alignments: list[Alignment], max_edit: float) -> tuple[int | None, str]:
    """Among a failure's attempts, the index of the verified one with the smallest edit (earliest on a tie).

    Returns ``(index, "repair")``, or ``(None, reason)`` with the reason of the gate that refused
    the most promising attempt: ``"rewrite"`` if some verified attempt edited too much, else
    ``"unverified"`` (``"no_attempts"`` when there were none).

    >>> a, b, c = align([1, 2, 3], [1, 9, 3]), align([1, 2, 3], [1, 2, 8]), align([1, 2, 3], [7, 8, 9])
    >>> choose_repair([1.0, 1.0, 0.0], [c, a, b], 0.5), choose_repair([1.0, 0.0], [c, a], 0.5), choose_repair([0.0], [a], 0.5)
    ((1, 'repair'), (None, 'rewrite'), (None, 'unverified'))
    """
    if not rewards:
        return None, "no_attempts"
    verdicts = [gate(r, a, max_edit) for r, a in zip(rewards, alignments)]
    passed = [i for i, v in enumerate(verdicts) if v is None]
    if passed:
        return min(passed, key=lambda i: (alignments[i].edit_size, i)), "repair"
    return None, "rewrite" if "rewrite" in verdicts else "unverified"


# -- the oracle repair ----------------------------------------------------------------------------
def reference_tail(reference: str, good_steps: int, delimiter: str, merge_empty: bool = False) -> str:
    """The reference chain's text after its first ``good_steps`` steps (split as rlint/steps.py splits them).

    >>> reference_tail("3+4=7\\n7*2=14\\nA:14\\n", 1, "\\n"), reference_tail("3+4=7\\nA:7\\n", 0, "\\n")
    ('7*2=14\\nA:14\\n', '3+4=7\\nA:7\\n')
    """
    return reference[prefix_offset(step_char_ends(reference, delimiter, merge_empty), good_steps):]


def oracle_repair(failed: list[int], keep: int, tail: list[int], eos_id: int) -> tuple[list[int], Alignment]:
    """The oracle repair of a failed completion ``failed`` (F,) and its alignment with it.

    The repair (R,) is ``failed[:keep]`` (the tokens before the true first error), the reference
    chain's tokens from there ``tail``, and ``eos_id``, as a sampled completion ends. It is diffed
    by :func:`align` exactly like a self-repair.

    >>> ids, a = oracle_repair([5, 6, 7, 8, 2], 2, [5, 9, 8], 2)
    >>> ids, a.failed_spans, a.repaired_spans, a.edit_size, a.first_change
    ([5, 6, 5, 9, 8, 2], ((2, 3),), ((2, 4),), 0.4, 2)
    """
    repaired = list(failed[:keep]) + list(tail) + [eos_id]
    return repaired, align(failed, repaired)


# -- credit schemes of the repair_diff estimator (rlint/credit.py) ----------------------------------
def repair_failure_token_advantages(n_tokens: int, step_ends: list[int], changed: tuple[tuple[int, int], ...], reward: float, repair_reward: float,
                                    outcome_advantage: float, process_weight: float, unchanged_weight: float,
                                    after_error_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """A failed completion of T tokens against its verified repair: the difference is the process signal.

    changed: the failed side's changed spans (half-open token ranges, rlint/repair.py). Changed
    tokens: ``lambda * (reward - repair_reward) + (1 - lambda) * a`` (weight 1 in the step of the
    first change, ``after_error_weight`` in later steps, whose changes mostly follow from it);
    unchanged tokens: ``(1 - lambda) * a`` with weight ``unchanged_weight``. Returns (T,), (T,).

    >>> adv, w = repair_failure_token_advantages(6, [3, 6], ((1, 2), (4, 5)), 0.0, 1.0, -0.5, 1.0, 0.0, 0.0)
    >>> adv.tolist(), w.tolist()
    ([0.0, -1.0, 0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    mask = np.array(span_mask(n_tokens, changed), dtype=bool)
    lam = process_weight
    advantages = np.full(n_tokens, (1.0 - lam) * outcome_advantage + 0.0, dtype=np.float32)
    advantages[mask] = lam * (reward - repair_reward) + (1.0 - lam) * outcome_advantage
    weights = np.full(n_tokens, unchanged_weight, dtype=np.float32)
    weights[mask] = 1.0
    if mask.any():
        first_step = step_of(step_ends, int(np.argmax(mask)))
        later = prefix_offset(step_ends, first_step) if first_step is not None else n_tokens
        weights[later:][mask[later:]] = after_error_weight
    return advantages, weights


def repair_token_advantages(n_tokens: int, changed: tuple[tuple[int, int], ...], repair_reward: float, parent_reward: float, branch_weight: float,
                            unchanged_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """A verified repair of R tokens as a completion of the original prompt.

    Every token carries ``branch_weight * (repair_reward - parent_reward)``; changed tokens with
    weight 1, unchanged ones with ``unchanged_weight``. Returns (R,), (R,).

    >>> adv, w = repair_token_advantages(4, ((1, 3),), 1.0, 0.0, 1.0, 0.5)
    >>> adv.tolist(), w.tolist()
    ([1.0, 1.0, 1.0, 1.0], [0.5, 1.0, 1.0, 0.5])
    """
    weights = np.where(np.array(span_mask(n_tokens, changed), dtype=bool), 1.0, unchanged_weight).astype(np.float32)
    return np.full(n_tokens, branch_weight * (repair_reward - parent_reward), dtype=np.float32), weights

