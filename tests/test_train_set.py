"""The train set built from a round's rows (rlint/train_set.py): modes, the sft gate, continuations, repairs, the repairer."""

import numpy as np
import pytest

from rlint.config import CreditConfig, Params, with_changes
from rlint.train_set import build_train_set


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
    from rlint.correct import repair_branch
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
        p = with_changes(params(strategy="repair"), mode=mode)
        trained[name] = build_train_set([right, wrong], [failure], [repair_branch(failure, wrong)], p, task=TASK, repair_logprobs=old)
    assert [r["kind"] for r in trained["oracle"]] == ["rollout", "rollout", "repair"]
    assert trained["oracle"] == trained["self"]
    failed = trained["oracle"][1]
    assert [WRONG[i] for i, w in enumerate(failed["loss_weights"]) if w > 0] == ["6"] and min(failed["advantages"]) == -1.0


def test_the_repairer_is_trained_on_its_own_attempts_in_the_repair_context():
    """credit.repairer_weight: a failure's attempts, group-normalised, as completions of its repair prompt."""
    from rlint.correct import repair_branch
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
    base = params(strategy="repair", repair_temperature=1.0)  # the repairer is trained at the loss's temperature

    def train_set(weight):
        p = with_changes(base, credit=with_changes(base.credit, repairer_weight=weight))
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
    p = with_changes(base, credit=with_changes(base.credit, repairer_weight=0.5))
    assert [r["kind"] for r in build_train_set([right, wrong], [failure], [], p, task=TASK, continuations=same)] == ["rollout", "rollout"]


def test_internalized_in_outcome_mode_is_grpo():
    rollouts = [_rollout(0, "p", 1.0), _rollout(1, "p", 0.0), _rollout(2, "q", 0.0), _rollout(3, "q", 1.0)]
    failures = [{"failure_id": "r1-p-s1", "first_error_step": 2, "value_before": 0.5, "value_after": 0.0}]
    internalized = build_train_set(rollouts, failures, [], Params(mode="outcome"))
    grpo = build_train_set(rollouts, failures, [], Params(mode="outcome", credit=CreditConfig(estimator="grpo")))
    assert internalized == grpo
