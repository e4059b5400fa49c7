"""One view of a sequence, from hand-built rows of each kind: rollout, replayed rollout, continuation, branch (and repair)."""

from __future__ import annotations

import pytest

from rlint.sequences import SequenceView, of_archive_entry, of_branch, of_continuation, of_prefix, of_rollout

FRESH = {"prompt_token_ids": [1, 2], "archived_prefix_token_count": 0, "token_ids": [10, 11, 12, 13]}
REPLAYED = {"prompt_token_ids": [1, 2, 7, 8], "archived_prefix_token_count": 2, "token_ids": [20, 21, 22]}


def test_a_fresh_rollout_is_prompt_then_completion():
    v = of_rollout(FRESH)
    assert (v.prompt_ids, v.archived_ids, v.kept_ids, v.completion_ids) == ([1, 2], [], [], [10, 11, 12, 13])
    assert v.context_ids == [1, 2] and v.full_ids == [1, 2, 10, 11, 12, 13] and v.scored_ids == [10, 11, 12, 13]


def test_a_replayed_rollout_scores_its_archived_prefix_with_the_completion():
    v = of_rollout(REPLAYED)
    assert v.prompt_ids == [1, 2] and v.archived_ids == [7, 8] and v.context_ids == [1, 2, 7, 8]
    assert v.scored_ids == [7, 8, 20, 21, 22] and v.full_ids == [1, 2, 7, 8, 20, 21, 22]


@pytest.mark.parametrize("parent", [FRESH, REPLAYED])
def test_a_continuation_keeps_the_parents_first_tokens_in_its_context(parent):
    v = of_continuation(parent, {"prefix_token_count": 2, "token_ids": [30, 31], "stage": "mine"})
    assert v.context_ids == list(parent["prompt_token_ids"]) + list(parent["token_ids"][:2])
    assert v.full_ids == v.context_ids + [30, 31]
    assert v.scored_ids == of_rollout(parent).archived_ids + list(parent["token_ids"][:2]) + [30, 31]
    with pytest.raises(ValueError, match="repair prompt"):
        of_continuation(parent, {"prefix_token_count": 0, "token_ids": [1], "stage": "repair"})


@pytest.mark.parametrize("parent", [FRESH, REPLAYED])
def test_a_search_branch_continues_the_last_good_prefix_and_a_repair_the_problems_own_prompt(parent):
    branch = of_branch(parent, {"kind": "search", "branch_token_offset": 1, "token_ids": [40]})
    assert branch.context_ids == list(parent["prompt_token_ids"]) + list(parent["token_ids"][:1]) and branch.completion_ids == [40]
    assert branch == of_prefix(parent, 1).with_completion([40])
    repair = of_branch(parent, {"kind": "repair", "branch_token_offset": 0, "token_ids": [7, 8, 41]})
    assert repair == SequenceView([1, 2], [], [], [7, 8, 41]) and repair.context_ids == [1, 2]


def test_an_archive_entry_is_the_prompt_and_the_prefix_a_replay_starts_after():
    v = of_archive_entry({"context_token_ids": [1, 2, 7, 8], "archived_prefix_token_count": 2})
    assert v.prompt_ids == [1, 2] and v.archived_ids == [7, 8] and v.context_ids == [1, 2, 7, 8] and v.completion_ids == []
