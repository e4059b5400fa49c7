"""Credit schemes and estimators against hand-computed advantages."""

import numpy as np
import pytest

from rlint.config import Params
from rlint.credit import branch_token_advantages, failure_token_advantages, group_outcome_advantages


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


from rlint.config import ConfigError, CreditConfig  # noqa: E402
from rlint.credit import ESTIMATORS, BranchInput, CreditInputs, LocatedFailure, info_gain_token_advantages, watermark_gains  # noqa: E402


def _random_round(rng, with_probs=False):
    n = int(rng.integers(2, 30))
    rewards = rng.integers(0, 2, n).astype(float)
    rewards[rng.random(n) < 0.1] = np.nan
    n_tokens, step_ends, probs = [], [], []
    for _ in range(n):
        k = int(rng.integers(1, 6))
        ends = np.cumsum(rng.integers(1, 5, k)).tolist()
        n_tokens.append(ends[-1] + int(rng.integers(0, 2)))  # sometimes an eos after the last step
        step_ends.append(ends)
        probs.append(rng.random(max(k - 1, 0) + 1))
    failures = {i: LocatedFailure(int(rng.integers(1, len(step_ends[i]) + 1)), float(rng.random()), 0.0)
                for i in range(n) if rewards[i] != 1.0 and rng.random() < 0.7}
    branches = [BranchInput(int(rng.integers(0, n)), int(rng.integers(1, 8)), 1.0, float(rng.random())) for _ in range(int(rng.integers(0, 4)))]
    return CreditInputs(rewards, rng.integers(0, 4, n), n_tokens, step_ends, failures, branches, probs if with_probs else None)


def _loop_outcome(inputs, i, scale_by_std, eps):
    rewards = np.nan_to_num(inputs.rewards)
    members = rewards[inputs.group_ids == inputs.group_ids[i]]
    centred = rewards[i] - members.mean()
    return centred / (members.std() + eps) if scale_by_std else centred


def test_every_estimator_is_registered_under_its_config_name():
    assert set(ESTIMATORS) == {"grpo", "drgrpo", "internalized", "info_gain", "repair_diff"}
    assert [name for name, e in ESTIMATORS.items() if e.uses_mining] == ["internalized", "repair_diff"]
    assert [name for name, e in ESTIMATORS.items() if e.needs_answer_probs] == ["info_gain"]


def test_estimators_match_token_loops_over_random_rounds():
    cfg = CreditConfig(process_weight=0.7, after_error_weight=0.25, branch_weight=1.5)
    for seed in range(40):
        inputs = _random_round(np.random.default_rng(seed), with_probs=True)
        for name, scale in (("grpo", True), ("drgrpo", False)):
            credit = ESTIMATORS[name].fn(inputs, cfg)
            rollouts = credit.rollouts
            assert credit.branches == [] and credit.continuations == []
            for i, (adv, w) in enumerate(rollouts):
                assert len(adv) == inputs.n_tokens[i] and np.all(w == 1)
                np.testing.assert_allclose(adv, _loop_outcome(inputs, i, scale, cfg.epsilon), rtol=1e-5, atol=1e-6)
        credit = ESTIMATORS["internalized"].fn(inputs, cfg)
        rollouts, branches = credit.rollouts, credit.branches
        for i, (adv, w) in enumerate(rollouts):
            a = _loop_outcome(inputs, i, True, cfg.epsilon)
            f = inputs.failures.get(i)
            for t in range(inputs.n_tokens[i]):
                if f is None:
                    want, weight = a, 1.0
                else:
                    step = next((j + 1 for j, end in enumerate(inputs.step_ends[i]) if t < end), None)  # 1-based step of token t
                    if step is not None and step < f.first_error_step:
                        want, weight = 0.3 * a, 1.0
                    elif step == f.first_error_step:
                        want, weight = 0.7 * (f.value_after - f.value_before) + 0.3 * a, 1.0
                    else:
                        want, weight = a, 0.25
                assert adv[t] == pytest.approx(want, rel=1e-5, abs=1e-6) and w[t] == pytest.approx(weight)
        assert [b[0].tolist() for b in branches] == [pytest.approx([1.5 * (1.0 - b.value_before)] * b.n_tokens) for b in inputs.branches]
        rollouts = ESTIMATORS["info_gain"].fn(inputs, cfg).rollouts
        for i, (adv, w) in enumerate(rollouts):
            a, probs, ends = _loop_outcome(inputs, i, True, cfg.epsilon), inputs.answer_probs[i], inputs.step_ends[i]
            for t in range(inputs.n_tokens[i]):
                step = next((j + 1 for j, end in enumerate(ends) if t < end), None)
                gain = 0.0
                if step is not None and step < len(probs):  # reasoning step: all but the last
                    gain = max(0.0, probs[step] - max(probs[:step]))
                assert adv[t] == pytest.approx(a + 0.7 * gain, rel=1e-5, abs=1e-6) and w[t] == 1.0


def test_watermark_by_hand_and_against_a_loop():
    # a rise, a dip (no credit), a recovery that only counts above the old best
    np.testing.assert_allclose(watermark_gains(np.array([0.2, 0.6, 0.1, 0.7, 0.7])), [0.4, 0.0, 0.1, 0.0], atol=1e-7)
    assert watermark_gains(np.array([0.5])).tolist() == []
    rng = np.random.default_rng(1)
    for _ in range(100):
        probs = rng.random(int(rng.integers(1, 10)))
        best, want = probs[0], []
        for p in probs[1:]:
            want.append(max(0.0, p - best))
            best = max(best, p)
        np.testing.assert_allclose(watermark_gains(probs), want, atol=1e-6)
        assert watermark_gains(probs).sum() == pytest.approx(probs.max() - probs[0], abs=1e-5)  # gains telescope to the rise of the best value


def test_info_gain_rewards_reasoning_steps_only():
    # steps end at 2, 4, 6 (the third states the answer), an eos at 6; p rises by 0.3 after step 1 and 0.2 after step 2
    adv, w = info_gain_token_advantages(7, [2, 4, 6], np.array([0.1, 0.4, 0.6]), 0.5, 1.0)
    np.testing.assert_allclose(adv, [0.8, 0.8, 0.7, 0.7, 0.5, 0.5, 0.5], atol=1e-6)
    assert w.tolist() == [1.0] * 7


def test_nonsensical_estimator_and_mode_pairs_are_refused(tmp_path):
    from rlint.config import load_params

    for estimator in ("grpo", "drgrpo", "info_gain"):
        Params(mode="outcome", credit=CreditConfig(estimator=estimator))
        path = tmp_path / "params.yaml"
        path.write_text(f"mode: internalized\ncredit:\n  estimator: {estimator}\n")
        with pytest.raises(ConfigError, match=rf"params.yaml: .*credit.estimator='{estimator}'.*mode: outcome"):
            load_params(path)
    path.write_text("credit:\n  estimator: ppo\n")
    with pytest.raises(ConfigError, match=r"params.yaml: .*credit.estimator='ppo': use one of grpo, drgrpo, internalized, info_gain"):
        load_params(path)


def test_continuations_are_credited_apart_from_branches_and_a_name_registers_once():
    from rlint.credit import register_estimator

    cfg = CreditConfig(branch_weight=2.0, continuation_weight=0.5)
    inputs = CreditInputs(np.array([1.0, 0.0]), np.array([0, 0]), [3, 4], [[3], [2, 4]], {1: LocatedFailure(2, 0.5, 0.0)},
                          [BranchInput(1, 2, 1.0, 0.5)], continuations=[BranchInput(1, 3, 0.0, 0.5, "continuation")])
    credit = ESTIMATORS["internalized"].fn(inputs, cfg)
    assert len(credit.rollouts) == 2 and len(credit.branches) == 1 and len(credit.continuations) == 1
    assert credit.branches[0][0].tolist() == [1.0, 1.0] and credit.continuations[0][0].tolist() == [-0.25] * 3
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("grpo")(lambda inputs, cfg: None)
