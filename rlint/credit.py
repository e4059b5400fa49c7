"""Reuse: per-token advantages from outcomes, mined first errors, corrected branches, information gain.

Two layers, both pure functions over arrays:

- **schemes** give one sequence of T trained tokens its ``(advantages, loss_weights)``, each of
  shape ``(T,)`` (:func:`outcome_token_advantages`, :func:`failure_token_advantages`,
  :func:`branch_token_advantages`, :func:`info_gain_token_advantages`), except
  :func:`group_outcome_advantages`, which works on a whole batch of sequence rewards;
- **estimators** turn a round (:class:`CreditInputs`) into per-token credit for every rollout,
  branch and continuation (:class:`Credit`); each is registered under the name ``credit.estimator`` uses (:data:`ESTIMATORS`):

  ``grpo``          group-normalised outcome advantage on every token (Shao et al. 2024, arXiv 2402.03300);
  ``drgrpo``        the same without the std scaling (Dr. GRPO, Liu et al. 2025, arXiv 2503.20783);
  ``internalized``  the method of DESIGN.md: GRPO for successes and unlocated failures; a failure
                    with a located first error e gets ``(1 - lambda) * a`` on its good prefix (0 by
                    default: not penalised), ``lambda * (V(e) - V(e-1)) + (1 - lambda) * a`` on step e,
                    ``a`` with weight ``after_error_weight`` after it (0 masks); a corrected branch
                    gets ``branch_weight * (reward - V(branch point))`` on each of its tokens, and
                    every other mining continuation from a good prefix p gets
                    ``continuation_weight * (reward - V(p))`` (0: not trained);
  ``repair_diff``   identify by repair (rlint/repair.py): a failure with a verified repair gets
                    ``-lambda * (r_repair - r) + (1 - lambda) * a`` on the tokens the repair changed (those
                    after the step of the first change with weight ``after_error_weight``) and ``(1 - lambda) * a``
                    with weight ``unchanged_weight`` on the others; the repair, trained as a completion of
                    the original prompt, gets ``branch_weight * (r_repair - r)`` on its changed tokens and the
                    same with weight ``repair_unchanged_weight`` on the others; everything else as ``internalized``;
  ``info_gain``     step-wise marginal information gain (Wang et al. 2026, arXiv 2602.01034): the
                    outcome advantage on the whole completion plus ``lambda * g_j`` on the tokens of
                    reasoning step j, where ``g_j`` is the rise of the policy's probability of the
                    reference answer after step j above the best value reached before it.

An estimator that does not use mined failures (``uses_mining=False``) is only accepted with ``mode:
outcome`` (rlint/config/params.py); ``internalized`` in mode ``outcome`` sees none and equals ``grpo``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from rlint.config import names
from rlint.config.names import GROUP_STDS  # noqa: F401 - re-exported: the names credit.group_std accepts
from rlint.steps import prefix_offset

TokenCredit = tuple[np.ndarray, np.ndarray]  # advantages (T,), loss weights (T,)


def group_outcome_advantages(rewards: np.ndarray, group_ids: np.ndarray, epsilon: float = 1e-6, scale_by_std: bool = True,
                             group_std: str = "population") -> np.ndarray:
    """GRPO outcome advantage per sequence: ``(r - mean_group) / (std_group + epsilon)``.

    rewards: (N,) float, NaN for unscorable (counted as 0). group_ids: (N,) any hashable dtype.
    Returns (N,) float32. A group whose rewards are all equal gets 0. ``group_std`` is
    ``population`` (divide by n) or ``sample`` (divide by n - 1, as TRL's GRPOTrainer does; a
    group of one then gets 0); ``scale_by_std=False`` gives the Dr. GRPO variant (mean removal only).

    >>> group_outcome_advantages(np.array([1.0, 0.0, 0.0, 1.0]), np.array([0, 0, 1, 1])).round(3).tolist()
    [1.0, -1.0, -1.0, 1.0]
    >>> group_outcome_advantages(np.array([1.0, 0.0]), np.array([0, 0]), group_std="sample").astype(float).round(3).tolist()
    [0.707, -0.707]
    """
    if group_std not in GROUP_STDS:
        raise ValueError(f"unknown group_std {group_std!r}; use one of {', '.join(GROUP_STDS)}")
    ddof = 1 if group_std == "sample" else 0
    rewards = np.nan_to_num(np.asarray(rewards, dtype=np.float64), nan=0.0)
    out = np.zeros_like(rewards)
    _, inverse = np.unique(np.asarray(group_ids), return_inverse=True)
    for group in range(inverse.max() + 1 if len(inverse) else 0):
        members = inverse == group
        centred = rewards[members] - rewards[members].mean()
        std = rewards[members].std(ddof=ddof) if members.sum() > ddof else 0.0
        out[members] = centred / (std + epsilon) if scale_by_std else centred
    return out.astype(np.float32)


def outcome_token_advantages(n_tokens: int, advantage: float) -> tuple[np.ndarray, np.ndarray]:
    """Every token carries the sequence advantage with weight 1. Returns (T,), (T,)."""
    return np.full(n_tokens, advantage, dtype=np.float32), np.ones(n_tokens, dtype=np.float32)


def failure_token_advantages(n_tokens: int, step_ends: list[int], first_error_step: int, value_before: float, value_after: float,
                             outcome_advantage: float, process_weight: float, after_error_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Advantages of a failed rollout whose first wrong step is ``first_error_step`` (1-based).

    step_ends: exclusive token end of each step (len K, values <= T). Tokens before the wrong
    step: ``(1 - lambda) * a``; tokens of it: ``lambda * (value_after - value_before) +
    (1 - lambda) * a``; later tokens (the eos included): ``a`` with weight
    ``after_error_weight``. Returns advantages (T,) and loss weights (T,).

    >>> adv, w = failure_token_advantages(6, [2, 4, 6], 2, 0.5, 0.0, -1.0, 1.0, 0.0)
    >>> adv.tolist(), w.tolist()
    ([0.0, 0.0, -0.5, -0.5, -1.0, -1.0], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    """
    start = step_ends[first_error_step - 2] if first_error_step >= 2 else 0
    end = step_ends[first_error_step - 1]
    lam = process_weight
    advantages = np.empty(n_tokens, dtype=np.float32)
    weights = np.ones(n_tokens, dtype=np.float32)
    advantages[:start] = (1.0 - lam) * outcome_advantage + 0.0  # + 0.0: no negative zeros in the data
    advantages[start:end] = lam * (value_after - value_before) + (1.0 - lam) * outcome_advantage
    advantages[end:] = outcome_advantage
    weights[end:] = after_error_weight
    return advantages, weights


def branch_token_advantages(n_tokens: int, reward: float, value_before: float, branch_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """A corrected branch's continuation: ``branch_weight * (reward - V(branch point))`` on each token.

    >>> branch_token_advantages(3, 1.0, 0.25, 1.0)[0].tolist()
    [0.75, 0.75, 0.75]
    """
    return np.full(n_tokens, branch_weight * (reward - value_before), dtype=np.float32), np.ones(n_tokens, dtype=np.float32)


# -- information gain (arXiv 2602.01034) ----------------------------------------------------------
def watermark_gains(answer_probs: np.ndarray) -> np.ndarray:
    """Marginal information gain of each step against a monotonic watermark.

    answer_probs: (R + 1,) ``p_j = P(reference answer | prompt, steps 1..j)`` for j = 0..R.
    Returns (R,) ``g_j = max(0, p_j - max(p_0, ..., p_{j-1}))``: a step earns only what lifts the
    probability above the best value reached so far, so noise that falls and recovers earns nothing twice.

    >>> watermark_gains(np.array([0.1, 0.3, 0.2, 0.35, 0.5])).astype(float).round(3).tolist()
    [0.2, 0.0, 0.05, 0.15]
    """
    probs = np.asarray(answer_probs, dtype=np.float64)
    if len(probs) < 2:
        return np.zeros(0, dtype=np.float32)
    watermark = np.maximum.accumulate(probs)[:-1]  # (R,) best value before step j
    return np.maximum(probs[1:] - watermark, 0.0).astype(np.float32)


def info_gain_token_advantages(n_tokens: int, step_ends: list[int], answer_probs: np.ndarray, outcome_advantage: float,
                               process_weight: float) -> TokenCredit:
    """Decoupled credit: the outcome advantage on every token, plus ``lambda * g_j`` on the tokens of reasoning step j.

    step_ends: exclusive token end of each step (len K). The reasoning steps are the first
    ``R = len(answer_probs) - 1`` steps (R <= K; the last step, which states the answer, gets no
    process reward). Tokens after the last step (eos) carry the outcome advantage only. Returns (T,), (T,).

    >>> adv, w = info_gain_token_advantages(7, [2, 4, 6], np.array([0.2, 0.5, 0.4]), -1.0, 1.0)
    >>> adv.astype(float).round(2).tolist(), w.tolist()
    ([-0.7, -0.7, -1.0, -1.0, -1.0, -1.0, -1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    """
    advantages = np.full(n_tokens, outcome_advantage, dtype=np.float32)
    gains = watermark_gains(answer_probs)
    for step, gain in enumerate(gains):
        start = prefix_offset(step_ends, step)
        advantages[start:step_ends[step]] += process_weight * gain
    return advantages, np.ones(n_tokens, dtype=np.float32)


def reasoning_steps(n_steps: int) -> int:
    """Steps that get a process reward under ``info_gain``: all but the last, which states the answer."""
    return max(n_steps - 1, 0)


# -- estimators: a whole round to per-token credit, registered by name ----------------------------
@dataclass(frozen=True)
class LocatedFailure:
    first_error_step: int  # 1-based
    value_before: float
    value_after: float
    changed: tuple[tuple[int, int], ...] | None = None  # repair: changed token spans of the failed completion


@dataclass(frozen=True)
class BranchInput:
    parent: int  # index of the parent rollout in CreditInputs
    n_tokens: int
    reward: float
    value_before: float  # estimated value of the prefix the sample continues
    kind: str = "branch"  # "branch": a verified correction; "continuation": any mining sample from a good prefix; "repair": a verified repair
    changed: tuple[tuple[int, int], ...] | None = None  # repair: changed token spans of the repair


@dataclass(frozen=True)
class CreditInputs:
    """What an estimator sees of one round: N rollouts, their located failures, M branches, C continuations."""

    rewards: np.ndarray  # (N,) float, NaN: unscorable (counted as 0)
    group_ids: np.ndarray  # (N,) the problem of each rollout
    n_tokens: list[int]  # (N,) completion tokens
    step_ends: list[list[int]]  # N lists of exclusive step ends
    failures: dict[int, LocatedFailure] = field(default_factory=dict)  # rollout index -> located first error
    branches: list[BranchInput] = field(default_factory=list)  # corrected branches and repairs (kind "branch", "repair")
    answer_probs: list[np.ndarray] | None = None  # info_gain: N arrays (R_i + 1,), see watermark_gains
    continuations: list[BranchInput] = field(default_factory=list)  # mining samples from a good prefix (kind "continuation")


@dataclass(frozen=True)
class Credit:
    """What an estimator returns: one TokenCredit per rollout, per branch and per continuation of its CreditInputs, in order."""

    rollouts: list[TokenCredit]
    branches: list[TokenCredit] = field(default_factory=list)
    continuations: list[TokenCredit] = field(default_factory=list)


@dataclass(frozen=True)
class Estimator:
    fn: Callable  # (CreditInputs, cfg) -> Credit
    uses_mining: bool  # consumes mined failures and corrected branches
    needs_answer_probs: bool  # the credit stage must score the reference answer after each step


ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(name: str, uses_mining: bool = False, needs_answer_probs: bool = False):
    """Register an estimator ``(inputs: CreditInputs, cfg: CreditConfig) -> Credit``.

    ``name`` must be listed in ``rlint.config.names.ESTIMATORS``, its flags agree with ESTIMATORS_USING_MINING and
    ESTIMATORS_SCORING_ANSWERS there (params are checked without importing this module), and not be taken already.
    """
    names.check_registration("credit estimator", name, names.ESTIMATORS, ESTIMATORS)
    for flag, listed in ((uses_mining, "ESTIMATORS_USING_MINING"), (needs_answer_probs, "ESTIMATORS_SCORING_ANSWERS")):
        if flag != (name in getattr(names, listed)):
            raise ValueError(f"credit estimator {name!r}: its flags disagree with rlint.config.names.{listed}")

    def wrap(fn):
        ESTIMATORS[name] = Estimator(fn, uses_mining, needs_answer_probs)
        return fn
    return wrap


def _outcome(inputs: CreditInputs, cfg, scale_by_std: bool) -> np.ndarray:
    return group_outcome_advantages(inputs.rewards, inputs.group_ids, cfg.epsilon, scale_by_std=scale_by_std, group_std=cfg.group_std)


@register_estimator("grpo")
def grpo(inputs: CreditInputs, cfg) -> Credit:
    """Group-normalised outcome advantage on every token of every rollout; no branches."""
    outcome = _outcome(inputs, cfg, scale_by_std=True)
    return Credit([outcome_token_advantages(n, float(a)) for n, a in zip(inputs.n_tokens, outcome)])


@register_estimator("drgrpo")
def drgrpo(inputs: CreditInputs, cfg) -> Credit:
    """Dr. GRPO: the group mean is removed but the advantage is not divided by the group std."""
    outcome = _outcome(inputs, cfg, scale_by_std=False)
    return Credit([outcome_token_advantages(n, float(a)) for n, a in zip(inputs.n_tokens, outcome)])


@register_estimator("internalized", uses_mining=True)
def internalized(inputs: CreditInputs, cfg) -> Credit:
    """GRPO outcome credit, process credit on located first errors, positive credit on corrected branches."""
    outcome = _outcome(inputs, cfg, scale_by_std=True)
    rollouts = []
    for i, (n, a) in enumerate(zip(inputs.n_tokens, outcome)):
        failure = inputs.failures.get(i)
        if failure is None:
            rollouts.append(outcome_token_advantages(n, float(a)))
        else:
            rollouts.append(failure_token_advantages(n, inputs.step_ends[i], failure.first_error_step, failure.value_before,
                                                     failure.value_after, float(a), cfg.process_weight, cfg.after_error_weight))
    weight = {"branch": cfg.branch_weight, "continuation": cfg.continuation_weight, "repair": cfg.branch_weight}
    branches = [branch_token_advantages(b.n_tokens, b.reward, b.value_before, weight[b.kind]) for b in inputs.branches]
    continuations = [branch_token_advantages(c.n_tokens, c.reward, c.value_before, weight[c.kind]) for c in inputs.continuations]
    return Credit(rollouts, branches, continuations)


@register_estimator("info_gain", needs_answer_probs=True)
def info_gain(inputs: CreditInputs, cfg) -> Credit:
    """GRPO outcome credit on whole completions plus watermarked information gain on reasoning steps."""
    if inputs.answer_probs is None:
        raise ValueError("info_gain needs CreditInputs.answer_probs")
    outcome = _outcome(inputs, cfg, scale_by_std=True)
    return Credit([info_gain_token_advantages(n, ends, probs, float(a), cfg.process_weight)
                   for n, ends, probs, a in zip(inputs.n_tokens, inputs.step_ends, inputs.answer_probs, outcome)])


@register_estimator("repair_diff", uses_mining=True)
def repair_diff(inputs: CreditInputs, cfg) -> Credit:
    """``internalized``, with repaired failures and their repairs credited by the token difference.

    Rollouts: N = len(inputs.n_tokens); failures with ``changed`` spans use
    :func:`repair_failure_token_advantages`, other located failures the value difference.
    Branches of kind "repair" use :func:`repair_token_advantages`; the rest as ``internalized``.
    """
    from rlint.repair import repair_failure_token_advantages, repair_token_advantages

    searched = {i: f for i, f in inputs.failures.items() if f.changed is None}
    credit = internalized(replace(inputs, failures=searched), cfg)
    rollouts, branches = credit.rollouts, credit.branches
    outcome = _outcome(inputs, cfg, scale_by_std=True)
    rewards = np.nan_to_num(inputs.rewards, nan=0.0)
    repaired = {b.parent: b for b in inputs.branches if b.kind == "repair"}
    for i, failure in inputs.failures.items():
        if failure.changed is not None and i in repaired:
            rollouts[i] = repair_failure_token_advantages(inputs.n_tokens[i], inputs.step_ends[i], failure.changed, float(rewards[i]),
                                                          repaired[i].reward, float(outcome[i]), cfg.process_weight, cfg.unchanged_weight,
                                                          cfg.after_error_weight)
    for k, branch in enumerate(inputs.branches):
        if branch.kind == "repair":
            branches[k] = repair_token_advantages(branch.n_tokens, branch.changed or (), branch.reward, float(rewards[branch.parent]),
                                                  cfg.branch_weight, cfg.repair_unchanged_weight)
    return credit
