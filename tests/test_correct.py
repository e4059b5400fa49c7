from rlint.correct import branch_candidates

PARENT = {"rollout_id": "r1-p-s0", "prompt_token_ids": [1, 2], "token_ids": [10, 11, 12, 13, 14, 15], "step_ends": [2, 4, 6]}
FAILURE = {"failure_id": "r1-p-s0", "round": 1, "policy_version": 0, "problem_id": "p", "first_error_step": 2, "value_before": 0.5}


def _known(cid, sequence, context_len, reward):
    return {"id": cid, "sequence": sequence, "context_len": context_len, "logprobs": [-float(i) for i in range(len(sequence) - context_len)], "reward": reward}


def test_branches_start_after_the_last_good_prefix():
    known = [
        _known("a", [1, 2, 10, 11, 30, 31], 4, 1.0),  # drawn from the good prefix: a branch
        _known("b", [1, 2, 10, 11, 30, 31], 4, 1.0),  # same tokens: dropped
        _known("c", [1, 2, 10, 11, 40], 4, 0.0),  # failed: not a branch
        _known("d", [1, 2, 10, 11, 12, 13, 50], 6, 1.0),  # drawn after the bad step: not a sample of the good prefix
        _known("e", [1, 2, 10, 11, 60, 61], 2, 1.0),  # drawn from the prompt, passes through the good prefix
        _known("f", [1, 2, 70], 2, 1.0),  # does not pass through the good prefix
    ]
    branches = branch_candidates(FAILURE, PARENT, known)
    assert [b["branch_id"] for b in branches] == ["a", "e"]
    assert branches[0]["token_ids"] == [30, 31] and branches[0]["branch_token_offset"] == 2 and branches[0]["branch_step"] == 1
    assert branches[1]["token_ids"] == [60, 61] and branches[1]["logprobs"] == [-2.0, -3.0]  # only the part after the prefix


def test_first_step_error_branches_from_the_prompt():
    failure = dict(FAILURE, first_error_step=1)
    branches = branch_candidates(failure, PARENT, [_known("a", [1, 2, 80, 81], 2, 1.0)])
    assert branches[0]["branch_token_offset"] == 0 and branches[0]["token_ids"] == [80, 81]


def test_a_shared_continuation_is_the_branch_of_one_failure_only():
    from rlint.correct import assign_branches

    shared = {"branch_id": "a-p1-c0"}
    own = {"branch_id": "b-p1-k0"}
    candidates = {"a": [shared], "b": [shared, own], "c": [shared], "d": []}
    owned = assign_branches(["a", "b", "c", "d"], candidates, max_branches=2)
    assert owned == {"a": [shared], "b": [own], "c": [], "d": []}
    ids = [b["branch_id"] for rows in owned.values() for b in rows]
    assert len(ids) == len(set(ids))
    assert assign_branches(["b"], candidates, max_branches=1) == {"b": [shared]}
