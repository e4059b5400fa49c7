"""Reuse: per-token advantages from outcomes, mined first errors and corrected branches.

Pure functions over arrays; each returns ``(advantages, loss_weights)`` of shape ``(T,)`` for
one sequence of T trained tokens, except :func:`group_outcome_advantages`, which works on a
whole batch of sequence rewards. The schemes (DESIGN.md, "credit"):

- successful rollouts and unlocated failures: the group-normalised outcome advantage (GRPO,
  Shao et al. 2024, arXiv 2402.03300) on every token;
- a failed rollout with a located first error e: good-prefix tokens get ``(1 - lambda) * a``
  (0 with the default lambda = 1: they are not penalised), the tokens of step e get
  ``lambda * (V(e) - V(e-1)) + (1 - lambda) * a`` (negative), tokens after step e keep ``a``
  with weight ``after_error_weight`` (0 masks them);
- a corrected branch's tokens get ``branch_weight * (reward - V(branch point))`` (positive).

With mode "outcome" only the first scheme is used: the pipeline is plain GRPO.
"""

from __future__ import annotations

import numpy as np


def group_outcome_advantages(rewards: np.ndarray, group_ids: np.ndarray, epsilon: float = 1e-6, scale_by_std: bool = True) -> np.ndarray:
    """GRPO outcome advantage per sequence: ``(r - mean_group) / (std_group + epsilon)``.

    rewards: (N,) float, NaN for unscorable (counted as 0). group_ids: (N,) any hashable dtype.
    Returns (N,) float32. A group whose rewards are all equal gets 0. ``std`` is the population
    standard deviation; ``scale_by_std=False`` gives the Dr. GRPO variant (mean removal only).

    >>> group_outcome_advantages(np.array([1.0, 0.0, 0.0, 1.0]), np.array([0, 0, 1, 1])).round(3).tolist()
    [1.0, -1.0, -1.0, 1.0]
    """
    rewards = np.nan_to_num(np.asarray(rewards, dtype=np.float64), nan=0.0)
    out = np.zeros_like(rewards)
    _, inverse = np.unique(np.asarray(group_ids), return_inverse=True)
    for group in range(inverse.max() + 1 if len(inverse) else 0):
        members = inverse == group
        centred = rewards[members] - rewards[members].mean()
        out[members] = centred / (rewards[members].std() + epsilon) if scale_by_std else centred
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
