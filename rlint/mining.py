"""Identify: the first wrong step of each failed rollout, from outcome rewards alone.

The value of a prefix, ``V(j) = P(correct | prompt, steps 1..j)``, is estimated by Monte
Carlo from the policy's own continuations scored by the outcome verifier. The first error is
the first step after which the value is at most ``threshold``; it is found by binary search
over steps, so a failure of K steps costs about ``M * ceil(log2(K + 1))`` continuations.

Everything already sampled for a problem is kept in a :class:`PrefixPool` (the group's
rollouts and every continuation drawn). Any known sequence that passes through a prefix is a
sample of the policy from that prefix, so:

- a prefix shared with a successful sibling rollout (or continuation) is known to have
  ``V > 0`` without a new sample;
- a probe needs only ``M - n`` new continuations when ``n`` known sequences pass through it,
  and identical prefixes of different failures are sampled once.

This module is pure: sampling is a function passed in, so tests drive it with synthetic
policies.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from rlint.config import names
from rlint.steps import prefix_offset

Tokens = tuple[int, ...]


@dataclass
class PrefixPool:
    """Every known complete sequence (prompt + completion tokens) of one problem.

    Each entry keeps ``context_len``, the length of the prefix it was sampled from: a sequence
    is a fair sample of a prefix P only if it was sampled from P or from a shorter prefix of
    it (a continuation drawn after a bad step is not a sample of the good prefix before it).
    """

    sequences: list[tuple[Tokens, int, bool]] = field(default_factory=list)

    def add(self, tokens: Tokens, success: bool, context_len: int) -> None:
        self.sequences.append((tokens, context_len, success))

    def stats(self, prefix: Tokens, exclude: Tokens | None = None) -> tuple[int, int]:
        """``(n, successes)`` over known sequences that start with ``prefix``.

        ``exclude`` (one copy of it) is left out: a failure's own sequence was chosen because it
        failed, so it is not an unbiased sample of its prefixes' values.
        """
        n = s = 0
        width = len(prefix)
        skipped = exclude is None
        for tokens, context_len, success in self.sequences:
            if context_len <= width and len(tokens) >= width and tokens[:width] == prefix:
                if not skipped and tokens == exclude:
                    skipped = True
                    continue
                n += 1
                s += success
        return n, s


def judge(n: int, successes: int, samples_per_probe: int, threshold: float) -> str | int:
    """Verdict on a prefix from ``n`` known sequences through it, ``successes`` of them right.

    Returns "good" (value > threshold), "bad" (value <= threshold) or the number of new
    continuations needed to decide. With ``threshold == 0`` one success is proof of ``V > 0``.

    >>> judge(3, 1, 8, 0.0), judge(8, 0, 8, 0.0), judge(2, 0, 8, 0.0), judge(8, 1, 8, 0.2)
    ('good', 'bad', 6, 'bad')
    """
    if successes > 0 and threshold == 0.0:
        return "good"
    if n >= samples_per_probe:
        return "good" if successes / n > threshold else "bad"
    return samples_per_probe - n


@dataclass
class FailureSearch:
    """Binary-search state of one failed rollout.

    Invariant: prefix ``lo`` is good (``lo = -1`` stands for "not even the prompt is known
    good") and prefix ``hi`` is bad; the full completion (``hi = K``) is bad by its reward.
    """

    failure_id: str
    problem_key: str
    prompt_ids: Tokens
    token_ids: Tokens
    step_ends: list[int]
    lo: int = -1
    hi: int = 0
    probe_steps: list[int] = field(default_factory=list)
    probe_values: list[float] = field(default_factory=list)
    probe_verdicts: list[str] = field(default_factory=list)  # "good" or "bad", one per probe
    continuations_spent: int = 0
    tokens_spent: int = 0
    drawn: list[tuple[int, "Continuation"]] = field(default_factory=list)  # (prefix steps, continuation) it paid for

    def __post_init__(self) -> None:
        self.hi = len(self.step_ends)

    @property
    def n_steps(self) -> int:
        return len(self.step_ends)

    def prefix(self, steps: int) -> Tokens:
        """Prompt plus the first ``steps`` steps of the completion."""
        return self.prompt_ids + self.token_ids[: prefix_offset(self.step_ends, steps)]

    @property
    def sequence(self) -> Tokens:
        return self.prompt_ids + self.token_ids

    def stats(self, pool: PrefixPool, steps: int) -> tuple[int, int]:
        """Known samples through prefix ``steps``, this failure's own sequence left out."""
        return pool.stats(self.prefix(steps), exclude=self.sequence)

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1


def raise_floor(search: FailureSearch, pool: PrefixPool, samples_per_probe: int, threshold: float) -> None:
    """Move ``lo`` up to the longest prefix the pool already proves good (no sampling).

    A successful sequence that shares steps 1..j with the failure proves ``V(j) > 0``. If it
    passes ``hi`` (an earlier probe was a false "bad"), the search reopens up to ``K``.
    """
    for steps in range(search.n_steps - 1, search.lo, -1):
        n, s = search.stats(pool, steps)
        if judge(n, s, samples_per_probe, threshold) == "good":
            search.lo = steps
            if search.hi <= steps:
                search.hi = search.n_steps
            return


SEARCHES = names.SEARCHES  # mine.search: listed in rlint/config/names.py, so params are checked without importing this module


def advance(search: FailureSearch, pool: PrefixPool, samples_per_probe: int, threshold: float, strategy: str = "binary") -> tuple[int, int] | None:
    """Search as far as the pool allows; return ``(prefix steps, new samples needed)`` or None when done.

    ``strategy`` "binary" bisects ``(lo, hi)``, after settling the prompt when at most half a
    probe's samples are missing there (the group's own rollouts pass through it); "linear" probes ``lo + 1`` and stops at the first
    bad prefix; "full" estimates every prefix ``0 .. K-1`` (the per-step scan of value-labelling
    methods) and then takes the first bad one. "linear" and "full" exist to measure binary
    search against.
    """
    if strategy == "full":
        return _advance_full(search, pool, samples_per_probe, threshold)
    while not search.done:
        mid = (search.lo + search.hi) // 2 if strategy == "binary" else search.lo + 1
        if strategy == "binary" and search.lo == -1 and 0 not in search.probe_steps:
            # the prompt first when the group's rollouts nearly settle it: an unsolved prompt
            # then ends the search for all its failures at the cost of a sample or two
            n0, s0 = search.stats(pool, 0)
            if not isinstance(v0 := judge(n0, s0, samples_per_probe, threshold), int) or v0 <= samples_per_probe // 2:
                mid = 0
        n, s = search.stats(pool, mid)
        verdict = judge(n, s, samples_per_probe, threshold)
        if verdict == "good" or verdict == "bad":
            search.probe_steps.append(mid)
            search.probe_values.append(s / n if n else 0.0)
            search.probe_verdicts.append(verdict)
            if verdict == "good":
                search.lo = mid
            else:
                search.hi = mid
            continue
        return mid, verdict
    return None


def _advance_full(search: FailureSearch, pool: PrefixPool, samples_per_probe: int, threshold: float) -> tuple[int, int] | None:
    verdicts = dict(zip(search.probe_steps, search.probe_verdicts))
    for steps in range(search.n_steps):
        if steps in verdicts:
            continue
        n, s = search.stats(pool, steps)
        verdict = judge(n, s, samples_per_probe, threshold)
        if verdict not in ("good", "bad"):
            return steps, verdict
        search.probe_steps.append(steps)
        search.probe_values.append(s / n if n else 0.0)
        search.probe_verdicts.append(verdict)
        verdicts[steps] = verdict
    first_bad = next((j for j in range(search.n_steps) if verdicts[j] == "bad"), search.n_steps)
    search.lo, search.hi = first_bad - 1, first_bad
    return None


@dataclass(frozen=True)
class Continuation:
    """One sampled continuation of a prefix: its tokens, whether it reached the right answer."""

    token_ids: Tokens
    success: bool
    logprobs: tuple[float, ...] = ()
    reward: float | None = None
    text: str = ""  # decoded continuation, for audit


# sample([(problem key, prefix tokens), ...]) -> one Continuation per request, in order;
# a request may repeat (each repeat is a separate sample).
SampleFn = Callable[[list[tuple[str, Tokens]]], list[Continuation]]


def locate_first_errors(searches: list[FailureSearch], pools: dict[str, PrefixPool], sample: SampleFn, samples_per_probe: int, threshold: float,
                        strategy: str = "binary") -> int:
    """Run every search to the end, sampling one batch per search level.

    Requests for the same prefix (the same problem, the same tokens) are merged, so nothing is
    sampled twice. Returns the number of sampling levels used.
    """
    floor = strategy != "full"  # the full scan estimates every prefix, whatever the pool proves
    for search in searches if floor else []:
        raise_floor(search, pools[search.problem_key], samples_per_probe, threshold)
    levels = 0
    active = list(searches)
    while active:
        needed: dict[tuple[str, Tokens], int] = {}
        owners: dict[tuple[str, Tokens], list[tuple[FailureSearch, int]]] = defaultdict(list)
        still_active = []
        for search in active:
            request = advance(search, pools[search.problem_key], samples_per_probe, threshold, strategy)
            if request is None:
                continue
            steps, count = request
            key = (search.problem_key, search.prefix(steps))
            needed[key] = max(needed.get(key, 0), count)
            owners[key].append((search, steps))
            still_active.append(search)
        if not needed:
            break
        keys = sorted(needed, key=lambda k: (k[0], k[1]))
        results = sample([key for key in keys for _ in range(needed[key])])
        levels += 1
        cursor = 0
        for key in keys:
            problem_key, prefix = key
            batch = results[cursor: cursor + needed[key]]
            cursor += needed[key]
            for continuation in batch:
                pools[problem_key].add(prefix + tuple(continuation.token_ids), continuation.success, len(prefix))
            # the cost is charged to the first failure that asked for this prefix
            first, steps = owners[key][0]
            first.continuations_spent += len(batch)
            first.tokens_spent += sum(len(c.token_ids) for c in batch)
            first.drawn.extend((steps, c) for c in batch)
        for search in still_active if floor else []:
            raise_floor(search, pools[search.problem_key], samples_per_probe, threshold)
        active = still_active
    return levels


def prefix_value(search: FailureSearch, pool: PrefixPool, steps: int) -> float | None:
    """Monte Carlo value of a prefix from everything known; None when nothing passes through it.

    The whole failed completion (``steps == K``) has value 0 by its own reward.
    """
    if steps < 0:
        return None
    n, s = search.stats(pool, steps)
    if n == 0 and steps == search.n_steps:
        return 0.0
    return s / n if n else None
