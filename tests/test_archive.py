from rlint.archive import new_entries, select_replays, update_archive


def _rollout(rid, problem, tokens, ends, reward, archive_id=None, true_step=1):
    return {"rollout_id": rid, "problem_id": problem, "prompt": f"Q:{problem}\n", "answer": "7", "prompt_token_ids": [1, 2],
            "token_ids": tokens, "step_ends": ends, "reward": reward, "archive_id": archive_id, "true_first_error_step": true_step}


def _failure(fid, first_error_step):
    return {"failure_id": fid, "rollout_id": fid, "first_error_step": first_error_step}


ROLLOUTS = [
    _rollout("r1-a-s0", "a", [10, 11, 12, 13], [2, 4], 0.0, true_step=2),
    _rollout("r1-a-s1", "a", [10, 11, 14, 15], [2, 4], 0.0, true_step=2),  # same last good prefix as s0
    _rollout("r1-b-s0", "b", [20, 21, 22], [1, 3], 0.0),
    _rollout("r1-c-s0", "c", [30, 31], [2], 0.0),
]
FAILURES = [_failure("r1-a-s0", 2), _failure("r1-a-s1", 2), _failure("r1-b-s0", None), _failure("r1-c-s0", 1)]
CORRECTIONS = [
    {"failure_id": "r1-a-s0", "status": "uncorrected"}, {"failure_id": "r1-a-s1", "status": "uncorrected"},
    {"failure_id": "r1-b-s0", "status": "unlocated"}, {"failure_id": "r1-c-s0", "status": "corrected"},
]


def test_hard_failures_become_entries_at_their_last_good_prefix():
    entries = new_entries(ROLLOUTS, FAILURES, CORRECTIONS, round_id=1)
    assert [e["archive_id"] for e in entries] == ["r1-a-s0", "r1-b-s0"]  # a-s1 duplicates a-s0's prefix; c was corrected
    a, b = entries
    assert a["context_token_ids"] == [1, 2, 10, 11] and a["archived_prefix_token_count"] == 2 and a["prefix_steps"] == 1
    assert a["reason"] == "uncorrected" and a["status"] == "open" and a["replays"] == 0 and a["solved_round"] is None
    assert b["context_token_ids"] == [1, 2] and b["prefix_steps"] == 0 and b["reason"] == "unlocated"  # no good step known


def test_replays_add_no_new_entries():
    replay = _rollout("r2-a-s0", "a", [40], [1], 0.0, archive_id="r1-a-s0")
    assert new_entries([replay], [_failure("r2-a-s0", None)], [{"failure_id": "r2-a-s0", "status": "unlocated"}], 2) == []


def test_entries_are_solved_by_a_right_replay_or_a_corrected_replay_and_retire_after_max_replays():
    archive = new_entries(ROLLOUTS, FAILURES, CORRECTIONS, round_id=1)
    # round 2: entry a replayed, all wrong, one replay corrected -> solved; b replayed, nothing -> still open
    replays = [_rollout("r2-a-s0", "a", [40], [1], 0.0, "r1-a-s0"), _rollout("r2-b-s0", "b", [41], [1], 0.0, "r1-b-s0")]
    corrections = [{"failure_id": "r2-a-s0", "status": "corrected"}, {"failure_id": "r2-b-s0", "status": "uncorrected"}]
    after2 = {e["archive_id"]: e for e in update_archive(archive, replays, [], corrections, 2, max_replays=2)}
    assert after2["r1-a-s0"]["status"] == "solved" and after2["r1-a-s0"]["solved_round"] == 2 and after2["r1-a-s0"]["replays"] == 1
    assert after2["r1-b-s0"]["status"] == "open" and after2["r1-b-s0"]["replays"] == 1
    assert all(e["round"] == 2 and e["origin_round"] == 1 for e in after2.values())
    # round 3: b replayed again without success -> retired at max_replays; solved a is not touched
    replays3 = [_rollout("r3-b-s0", "b", [42], [1], 0.0, "r1-b-s0")]
    after3 = {e["archive_id"]: e for e in update_archive(list(after2.values()), replays3, [], [], 3, max_replays=2)}
    assert after3["r1-b-s0"]["status"] == "retired" and after3["r1-b-s0"]["replays"] == 2
    assert after3["r1-a-s0"] == {**after2["r1-a-s0"], "round": 3}


def test_a_right_replay_solves_its_entry():
    archive = new_entries(ROLLOUTS, FAILURES, CORRECTIONS, round_id=1)
    replays = [_rollout("r2-b-s0", "b", [41], [1], 0.0, "r1-b-s0"), _rollout("r2-b-s1", "b", [42], [1], 1.0, "r1-b-s0")]
    after = {e["archive_id"]: e for e in update_archive(archive, replays, [], [], 2, max_replays=3)}
    assert after["r1-b-s0"]["status"] == "solved" and after["r1-a-s0"]["status"] == "open" and after["r1-a-s0"]["replays"] == 0


def test_select_replays_least_replayed_oldest_one_per_problem():
    entries = [
        {"archive_id": "x1", "problem_id": "x", "status": "open", "replays": 0, "origin_round": 2},
        {"archive_id": "x0", "problem_id": "x", "status": "open", "replays": 0, "origin_round": 1},
        {"archive_id": "y0", "problem_id": "y", "status": "solved", "replays": 0, "origin_round": 1},
        {"archive_id": "z0", "problem_id": "z", "status": "open", "replays": 2, "origin_round": 1},
        {"archive_id": "w0", "problem_id": "w", "status": "open", "replays": 1, "origin_round": 1},
    ]
    assert [e["archive_id"] for e in select_replays(entries, 10)] == ["x0", "w0", "z0"]
    assert [e["archive_id"] for e in select_replays(entries, 1)] == ["x0"]
    assert select_replays(entries, 0) == []
