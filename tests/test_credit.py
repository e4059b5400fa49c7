"""Credit schemes against hand-computed advantages, and the train set built from them."""

import numpy as np
import pytest

from rlint.config import Params
from rlint.credit import branch_token_advantages, failure_token_advantages, group_outcome_advantages
from rlint.stages.credit import build_train_set


def test_grpo_by_hand():
    rewards = np.array([1.0, 0.0, 0.0, 0.0, np.nan, 1.0, 1.0, 1.0])
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    adv = group_outcome_advantages(rewards, groups, epsilon=0.0)
    # group 0: mean 0.25, population std sqrt(0.1875); group 1: NaN counts as 0, same numbers mirrored
    std = np.sqrt(0.1875)
    np.testing.assert_allclose(adv, [0.75 / std, -0.25 / std, -0.25 / std, -0.25 / std, -0.75 / std, 0.25 / std, 0.25 / std, 0.25 / std], rtol=1e-6)
    assert group_outcome_advantages(np.array([1.0, 1.0]), np.array([0, 0])).tolist() == [0.0, 0.0]
    np.testing.assert_allclose(group_outcome_advantages(rewards[:4], groups[:4], scale_by_std=False), [0.75, -0.25, -0.25, -0.25])


def test_grpo_matches_a_loop_over_random_groups():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        rewards = rng.integers(0, 2, n).astype(float)
        groups = rng.integers(0, 5, n)
        adv = group_outcome_advantages(rewards, groups, epsilon=1e-6)
        for i in range(n):
            members = rewards[groups == groups[i]]
            assert adv[i] == pytest.approx((rewards[i] - members.mean()) / (members.std() + 1e-6), rel=1e-5, abs=1e-6)


def test_failure_advantages_by_hand():
    # 8 tokens, steps end at 3, 5, 8; first error at step 2; V(before)=0.75, V(after)=0; outcome a=-0.5
    adv, w = failure_token_advantages(8, [3, 5, 8], 2, 0.75, 0.0, -0.5, process_weight=1.0, after_error_weight=0.0)
    assert adv.tolist() == [0, 0, 0, -0.75, -0.75, -0.5, -0.5, -0.5]
    assert w.tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    adv, w = failure_token_advantages(8, [3, 5, 8], 2, 0.75, 0.0, -0.5, process_weight=0.5, after_error_weight=0.1)
    np.testing.assert_allclose(adv, [-0.25] * 3 + [0.5 * -0.75 + 0.5 * -0.5] * 2 + [-0.5] * 3)
    np.testing.assert_allclose(w, [1] * 5 + [0.1] * 3)
    adv, _ = failure_token_advantages(4, [2, 4], 1, 0.5, 0.0, -1.0, 1.0, 0.0)  # error in the first step
    assert adv.tolist() == [-0.5, -0.5, -1.0, -1.0]


def test_branch_advantage_is_reward_minus_branch_point_value():
    adv, w = branch_token_advantages(4, 1.0, 0.25, 2.0)
    assert adv.tolist() == [1.5] * 4 and w.tolist() == [1.0] * 4


def _rollout(i, problem, reward, tokens=6):
    return {"rollout_id": f"r1-{problem}-s{i}", "round": 1, "policy_version": 0, "problem_id": problem, "prompt_token_ids": [1, 2],
            "token_ids": list(range(10, 10 + tokens)), "logprobs": [-1.0] * tokens, "step_ends": [2, 4, tokens], "reward": reward}


def test_train_set_modes_share_one_pipeline():
    rollouts = [_rollout(0, "p", 1.0), _rollout(1, "p", 0.0)]
    failures = [{"failure_id": "r1-p-s1", "first_error_step": 2, "value_before": 0.5, "value_after": 0.0}]
    branches = [{"branch_id": "r1-p-s1-p1-c0", "parent_rollout_id": "r1-p-s1", "branch_token_offset": 2, "token_ids": [40, 41, 42],
                 "logprobs": [-0.1, -0.2, -0.3], "reward": 1.0, "value_before": 0.5}]
    outcome = build_train_set(rollouts, failures, branches, Params(mode="outcome"))
    assert [r["kind"] for r in outcome] == ["rollout", "rollout"]
    assert outcome[1]["advantages"] == pytest.approx([-1.0] * 6, abs=1e-4)
    method = build_train_set(rollouts, failures, branches, Params(mode="internalized"))
    assert [r["kind"] for r in method] == ["rollout", "rollout", "branch"]
    assert method[0]["advantages"] == pytest.approx([1.0] * 6, abs=1e-4)  # success keeps GRPO
    assert method[1]["advantages"][:4] == pytest.approx([0, 0, -0.5, -0.5])
    assert method[1]["loss_weights"] == [1, 1, 1, 1, 0, 0]
    branch = method[2]
    assert branch["context_token_ids"] == [1, 2, 10, 11]  # prompt + the parent's good prefix, no loss on it
    assert branch["advantages"] == pytest.approx([0.5] * 3) and branch["logprobs"] == pytest.approx([-0.1, -0.2, -0.3])
