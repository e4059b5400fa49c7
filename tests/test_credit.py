"""Credit schemes against hand-computed advantages, and the train set built from them."""

import numpy as np
import pytest

from rlint.config import Params
from rlint.credit import branch_token_advantages, failure_token_advantages, group_outcome_advantages
from rlint.train_set import build_train_set


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


def _rollout(i, problem, reward, tokens=6, completion="1+1=2\n2+2=4\nA:4\n"):
    return {"rollout_id": f"r1-{problem}-s{i}", "round": 1, "policy_version": 0, "problem_id": problem, "prompt_token_ids": [1, 2],
            "token_ids": list(range(10, 10 + tokens)), "logprobs": [-1.0] * tokens, "step_ends": [2, 4, tokens], "reward": reward,
            "completion": completion, "answer": "4"}


def test_train_set_modes_share_one_pipeline():
    rollouts = [_rollout(0, "p", 1.0), _rollout(1, "p", 0.0)]
    failures = [{"failure_id": "r1-p-s1", "first_error_step": 2, "value_before": 0.5, "value_after": 0.0}]
    branches = [{"branch_id": "r1-p-s1-p1-c0", "parent_rollout_id": "r1-p-s1", "branch_token_offset": 2, "branch_step": 1, "token_ids": [40, 41, 42], "completion": "2+2=4\nA:4\n",
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


# -- estimators by name --------------------------------------------------------------------------
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


def test_internalized_in_outcome_mode_is_grpo():
    rollouts = [_rollout(0, "p", 1.0), _rollout(1, "p", 0.0), _rollout(2, "q", 0.0), _rollout(3, "q", 1.0)]
    failures = [{"failure_id": "r1-p-s1", "first_error_step": 2, "value_before": 0.5, "value_after": 0.0}]
    internalized = build_train_set(rollouts, failures, [], Params(mode="outcome"))
    grpo = build_train_set(rollouts, failures, [], Params(mode="outcome", credit=CreditConfig(estimator="grpo")))
    assert internalized == grpo


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


def test_sft_flag_needs_the_verifier_and_the_format_gate():
    rollouts = [_rollout(0, "p", 1.0), _rollout(1, "p", 1.0, completion="1+1=2\nwhat\nA:4\n"), _rollout(2, "p", 0.0)]
    branches = [{"branch_id": "r1-p-s2-p1-c0", "parent_rollout_id": "r1-p-s2", "branch_token_offset": 2, "branch_step": 1, "token_ids": [40, 41],
                 "completion": "2+2=4\nA:4\n", "logprobs": [-0.1, -0.2], "reward": 1.0, "value_before": 0.5}]
    failures = [{"failure_id": "r1-p-s2", "first_error_step": 2, "value_before": 0.5, "value_after": 0.0}]
    rows = build_train_set(rollouts, failures, branches, Params(mode="internalized"))
    # right and well formed; right but malformed; wrong; a branch judged with its parent's prefix "1+1=2\n"
    assert [r["sft"] for r in rows] == [True, False, False, True]
    branches[0]["completion"] = "A:4\n"  # the parent prefix plus this is still well formed
    assert build_train_set(rollouts, failures, branches, Params(mode="internalized"))[3]["sft"] is True
    branches[0]["branch_step"] = 0  # no reasoning line at all: malformed
    assert build_train_set(rollouts, failures, branches, Params(mode="internalized"))[3]["sft"] is False


def test_answer_probabilities_match_a_direct_forward(tiny_checkpoint):
    import torch

    from rlint.policy import load_policy
    from rlint.credit_scores import answer_probabilities

    model, tokenizer = load_policy(tiny_checkpoint)
    model.eval()
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    rollouts = []
    for i, completion in enumerate(["3+4=7\n7*2=14\nA:14\n", "3+4=8\nA:8\n", "A:1\n"]):
        ids = encode(completion)
        ends = [k + 1 for k, t in enumerate(ids) if tokenizer.decode([t]) == "\n"]
        rollouts.append({"prompt_token_ids": encode("Q:3,+4,*2\n"), "token_ids": ids, "step_ends": ends, "answer": "14"})
    probs = answer_probabilities(rollouts, model, tokenizer, lambda a: f"A:{a}\n", batch_size=2, temperature=0.8)
    assert [len(p) for p in probs] == [3, 2, 1]  # p_0 .. p_R for R = steps - 1 reasoning steps
    target = encode("A:14\n")
    for rollout, p in zip(rollouts, probs):
        for j, value in enumerate(p):
            context = rollout["prompt_token_ids"] + rollout["token_ids"][: ([0] + rollout["step_ends"])[j]]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([context + target])).logits[0] / 0.8, dim=-1)
            direct = sum(float(logp[len(context) - 1 + k, tok]) for k, tok in enumerate(target))
            assert value == pytest.approx(np.exp(direct), rel=1e-4)


def test_sft_gate_reads_a_replayed_rollout_with_its_archived_prefix():
    replay = {**_rollout(0, "p", 1.0, completion="A:4\n"), "archived_prefix_token_count": 12}
    rows = build_train_set([replay, _rollout(1, "p", 0.0)], [], [], Params(mode="internalized"))
    assert rows[0]["sft"] is False  # the completion alone has no reasoning line
    rows = build_train_set([replay, _rollout(1, "p", 0.0)], [], [], Params(mode="internalized"), replay_prefixes={replay["rollout_id"]: "1+1=2\n2+2=4\n"})
    assert rows[0]["sft"] is True


def _continuation(cid, failure_id, steps, offset, reward, tokens):
    return {"continuation_id": cid, "failure_id": failure_id, "prefix_steps": steps, "prefix_token_count": offset, "token_ids": tokens,
            "logprobs": [-0.5] * len(tokens), "completion": "3+3=6\nA:6\n", "reward": reward, "stage": "mine"}


def test_good_prefix_continuations_by_hand():
    from rlint.train_set import good_prefix_continuations

    failures = [{"failure_id": "f", "first_error_step": 3, "value_before": 0.25, "probe_steps": [2, 1], "probe_values": [0.5, 0.75]},
                {"failure_id": "u", "first_error_step": None, "value_before": None, "probe_steps": [0], "probe_values": [0.0]}]
    conts = [
        _continuation("f-p1-c0", "f", 1, 2, 1.0, [7]),    # good prefix, probe value 0.75 -> kept, value 0.75
        _continuation("f-p2-c0", "f", 2, 4, 0.0, [8]),    # last good prefix: value_before (0.25) wins over the probe's 0.5
        _continuation("f-p2-c1", "f", 2, 4, 1.0, [9]),    # already a branch -> left out
        _continuation("f-p3-c0", "f", 3, 6, 1.0, [10]),   # the wrong step's prefix: not good -> left out
        _continuation("f-p0-c0", "f", 0, 0, 0.0, [11]),   # no probe at 0 -> mean of its own draws (0.0)
        _continuation("u-p0-c0", "u", 0, 0, 0.0, [12]),   # unlocated failure -> left out
    ]
    got = good_prefix_continuations(failures, conts, [{"branch_id": "f-p2-c1"}])
    assert [(c["continuation_id"], v) for c, v in got] == [("f-p1-c0", 0.75), ("f-p2-c0", 0.25), ("f-p0-c0", 0.0)]


def test_continuation_rows_carry_reward_minus_prefix_value():
    rollouts = [_rollout(0, "p", 1.0), _rollout(1, "p", 0.0)]
    failures = [{"failure_id": "r1-p-s1", "first_error_step": 2, "value_before": 0.5, "value_after": 0.0, "probe_steps": [1], "probe_values": [0.5]}]
    conts = [_continuation("r1-p-s1-p1-c0", "r1-p-s1", 1, 2, 0.0, [40, 41]), _continuation("r1-p-s1-p0-c0", "r1-p-s1", 0, 0, 1.0, [42])]
    params = Params(mode="internalized", credit=CreditConfig(continuation_weight=0.5))
    rows = build_train_set(rollouts, failures, [], params, continuations=conts)
    assert [r["kind"] for r in rows] == ["rollout", "rollout", "continuation", "continuation"]
    first, second = rows[2], rows[3]
    assert first["context_token_ids"] == [1, 2, 10, 11] and first["token_ids"] == [40, 41]
    assert first["advantages"] == pytest.approx([0.5 * (0.0 - 0.5)] * 2)  # weight * (reward - V(prefix of 1 step))
    # no probe at the prompt: its value is the mean of its own draws (one, of reward 1), so 1 - 1 = 0
    assert second["context_token_ids"] == [1, 2] and second["advantages"] == pytest.approx([0.0])
    off = build_train_set(rollouts, failures, [], Params(mode="internalized", credit=CreditConfig(continuation_weight=0.0)), continuations=conts)
    assert [r["kind"] for r in off] == ["rollout", "rollout"]  # continuation_weight 0: not trained
    assert [r["kind"] for r in build_train_set(rollouts, failures, [], Params(mode="outcome", credit=CreditConfig(continuation_weight=0.5)),
                                               continuations=conts)] == ["rollout", "rollout"]


def test_an_oracle_repair_is_credited_exactly_like_the_same_self_repair():
    """repair_diff reads an oracle repair's failure row and branch as a self-repair's: same advantages, weights and rows."""
    import dataclasses

    from rlint.stages.correct import repair_branch
    from rlint.identify.repair import identify_by_oracle_repair, identify_by_repair
    from tests.identify.test_repair import PROBLEM, RIGHT, TASK, WRONG, ScriptedEngine, params, rollout_row

    engine = ScriptedEngine([RIGHT])
    right = dict(rollout_row(engine, RIGHT, rollout_id="r1-p-s0"), reward=1.0)
    wrong = dict(rollout_row(engine, WRONG, rollout_id="r1-p-s1"), reward=TASK.reward(WRONG, PROBLEM.answer))
    for i, row in enumerate((right, wrong)):
        row.update(round=1, policy_version=0, sample_index=i, logprobs=[-1.0] * len(row["token_ids"]), completion=engine.decode(row["token_ids"]))
    (self_failure,) = identify_by_repair([wrong], engine, TASK, params(repair_samples=1), seed=0, round_id=1).failures
    (oracle_failure,) = identify_by_oracle_repair([wrong], TASK, engine.tokenizer, round_id=1)
    old = {"r1-p-s1-repair": [-0.25] * len(oracle_failure["repair_token_ids"])}  # what credit.run recomputes under the original prompt
    trained = {}
    for name, failure, mode in (("self", self_failure, "internalized"), ("oracle", oracle_failure, "oracle")):
        p = dataclasses.replace(params(strategy="repair"), mode=mode)
        trained[name] = build_train_set([right, wrong], [failure], [repair_branch(failure, wrong)], p, task=TASK, repair_logprobs=old)
    assert [r["kind"] for r in trained["oracle"]] == ["rollout", "rollout", "repair"]
    assert trained["oracle"] == trained["self"]
    failed = trained["oracle"][1]
    assert [WRONG[i] for i, w in enumerate(failed["loss_weights"]) if w > 0] == ["6"] and min(failed["advantages"]) == -1.0


def test_the_repairer_is_trained_on_its_own_attempts_in_the_repair_context():
    """credit.repairer_weight: a failure's attempts, group-normalised, as completions of its repair prompt."""
    import dataclasses

    from rlint.stages.correct import repair_branch
    from rlint.identify.repair import identify_by_repair
    from tests.identify.test_repair import PROBLEM, RIGHT, TASK, WRONG, ScriptedEngine, params, rollout_row

    engine = ScriptedEngine([WRONG.replace("51", "50"), RIGHT, WRONG.replace("51", "49")])
    right = dict(rollout_row(engine, RIGHT, rollout_id="r1-p-s0"), reward=1.0)
    wrong = dict(rollout_row(engine, WRONG, rollout_id="r1-p-s1"), reward=TASK.reward(WRONG, PROBLEM.answer))
    for i, row in enumerate((right, wrong)):
        row.update(round=1, policy_version=0, sample_index=i, logprobs=[-1.0] * len(row["token_ids"]), completion=engine.decode(row["token_ids"]))
    repaired = identify_by_repair([wrong], engine, TASK, params(), seed=0, round_id=1)
    (failure,) = repaired.failures
    old = {"r1-p-s1-repair": [-0.25] * len(failure["repair_token_ids"])}
    base = params(strategy="repair")

    def train_set(weight):
        p = dataclasses.replace(base, credit=dataclasses.replace(base.credit, repairer_weight=weight))
        return build_train_set([right, wrong], [failure], [repair_branch(failure, wrong)], p, task=TASK, continuations=repaired.continuations,
                               repair_logprobs=old)

    off, on = train_set(0.0), train_set(0.5)
    assert [r["kind"] for r in off] == ["rollout", "rollout", "repair"]
    assert on[:3] == off  # the rest of the round is credited as before
    attempts = on[3:]
    assert [r["kind"] for r in attempts] == ["repair_attempt"] * 3
    assert [r["example_id"] for r in attempts] == ["r1-p-s1-repair0", "r1-p-s1-repair1", "r1-p-s1-repair2"]
    assert all(engine.decode(r["context_token_ids"]) == PROBLEM.prompt + WRONG + "::\n" for r in attempts)
    # one verified attempt of three: (1 - 1/3) / std and (0 - 1/3) / std, std = sqrt(2) / 3, scaled by 0.5
    std = np.sqrt(2) / 3
    assert [r["advantages"][0] for r in attempts] == pytest.approx([-0.5 / 3 / std, 0.5 * 2 / 3 / std, -0.5 / 3 / std], rel=1e-5)
    assert all(len(set(r["advantages"])) == 1 and set(r["loss_weights"]) == {1.0} and not r["sft"] for r in attempts)
    assert [r["logprobs"] for r in attempts] == [a["logprobs"] for a in repaired.continuations]  # sampled after this very prompt
    # a failure whose attempts all share one outcome teaches the repairer nothing
    same = [dict(a, reward=0.0) for a in repaired.continuations]
    p = dataclasses.replace(base, credit=dataclasses.replace(base.credit, repairer_weight=0.5))
    assert [r["kind"] for r in build_train_set([right, wrong], [failure], [], p, task=TASK, continuations=same)] == ["rollout", "rollout"]


def test_continuations_are_credited_apart_from_branches_and_a_name_registers_once():
    from rlint.credit import register_estimator

    cfg = CreditConfig(branch_weight=2.0, continuation_weight=0.5)
    inputs = CreditInputs(np.array([1.0, 0.0]), np.array([0, 0]), [3, 4], [[3], [2, 4]], {1: LocatedFailure(2, 0.5, 0.0)},
                          [BranchInput(1, 2, 1.0, 0.5)], continuations=[BranchInput(1, 3, 0.0, 0.5, "continuation")])
    credit = ESTIMATORS["internalized"].fn(inputs, cfg)
    assert len(credit.rollouts) == 2 and len(credit.branches) == 1 and len(credit.continuations) == 1
    assert credit.branches[0][0].tolist() == [1.0, 1.0] and credit.continuations[0][0].tolist() == [-0.25] * 3
    with pytest.raises(ValueError, match="twice"):
        register_estimator("grpo")(lambda inputs, cfg: None)
