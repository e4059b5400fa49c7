"""One view of a sequence: the problem's prompt, an archived prefix, the parent's kept tokens, the sampled completion.

A rollout restarted from an archive entry was sampled after the problem's own prompt and the
archived good prefix (``archived_prefix_token_count`` tokens at the end of its
``prompt_token_ids``); a continuation or a search branch after its parent's context and the
first ``prefix_token_count`` (``branch_token_offset``) tokens of the parent's completion; a repair
(branch kind "repair") is a completion of the problem's own prompt, its archived prefix rewritten
inside it. :class:`SequenceView` lays out the parts once, so no stage slices them by hand:

    context_ids = prompt_ids + archived_ids + kept_ids     (what the policy was sampled after)
    full_ids    = context_ids + completion_ids
    scored_ids  = archived_ids + kept_ids + completion_ids (what the verifier scores after the problem's prompt)

A repair attempt (continuation ``stage: "repair"``) continues its failure's repair prompt, not a
sequence of the round: it has no view here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class SequenceView:
    prompt_ids: list[int]  # the problem's own prompt, as encoded for sampling
    archived_ids: list[int] = field(default_factory=list)  # an archived good prefix replayed after it ([] for a fresh start)
    kept_ids: list[int] = field(default_factory=list)  # the parent's completion tokens kept in the context ([] for a rollout)
    completion_ids: list[int] = field(default_factory=list)  # the sampled tokens

    @property
    def context_ids(self) -> list[int]:
        return self.prompt_ids + self.archived_ids + self.kept_ids

    @property
    def full_ids(self) -> list[int]:
        return self.context_ids + self.completion_ids

    @property
    def scored_ids(self) -> list[int]:
        return self.archived_ids + self.kept_ids + self.completion_ids

    def with_completion(self, completion_ids: list[int]) -> SequenceView:
        return replace(self, completion_ids=list(completion_ids))


def _split(ids, archived: int | None) -> tuple[list[int], list[int]]:
    ids, archived = list(ids), archived or 0
    return ids[:len(ids) - archived], ids[len(ids) - archived:]


def of_rollout(rollout: dict) -> SequenceView:
    """A row of ``rollouts``, fresh or replayed.

    >>> v = of_rollout({"prompt_token_ids": [1, 2, 7, 8], "archived_prefix_token_count": 2, "token_ids": [9]})
    >>> v.prompt_ids, v.archived_ids, v.context_ids, v.scored_ids
    ([1, 2], [7, 8], [1, 2, 7, 8], [7, 8, 9])
    >>> of_rollout({"prompt_token_ids": [1, 2], "archived_prefix_token_count": 0, "token_ids": [3]}).full_ids
    [1, 2, 3]
    """
    prompt, archived = _split(rollout["prompt_token_ids"], rollout.get("archived_prefix_token_count"))
    return SequenceView(prompt, archived, [], list(rollout["token_ids"]))


def of_prefix(rollout: dict, offset: int) -> SequenceView:
    """The context a continuation of the rollout's first ``offset`` completion tokens is sampled from (no completion yet).

    >>> of_prefix({"prompt_token_ids": [1, 2], "archived_prefix_token_count": 0, "token_ids": [3, 4, 5]}, 2).context_ids
    [1, 2, 3, 4]
    """
    view = of_rollout(rollout)
    return replace(view, kept_ids=view.completion_ids[:offset], completion_ids=[])


def of_continuation(parent: dict, continuation: dict) -> SequenceView:
    """A mining continuation (``stage: "mine"``) of its parent rollout.

    >>> parent = {"prompt_token_ids": [1, 7], "archived_prefix_token_count": 1, "token_ids": [3, 4, 5]}
    >>> v = of_continuation(parent, {"prefix_token_count": 1, "token_ids": [6], "stage": "mine"})
    >>> v.context_ids, v.scored_ids
    ([1, 7, 3], [7, 3, 6])
    """
    if continuation.get("stage") == "repair":
        raise ValueError("a repair attempt continues its failure's repair prompt: it has no sequence view")
    return of_prefix(parent, continuation["prefix_token_count"]).with_completion(continuation["token_ids"])


def of_branch(parent: dict, branch: dict) -> SequenceView:
    """A branch of its parent rollout: a search branch continues the last good prefix, a repair the problem's own prompt.

    >>> parent = {"prompt_token_ids": [1, 7], "archived_prefix_token_count": 1, "token_ids": [3, 4, 5]}
    >>> of_branch(parent, {"kind": "search", "branch_token_offset": 2, "token_ids": [6]}).context_ids
    [1, 7, 3, 4]
    >>> v = of_branch(parent, {"kind": "repair", "branch_token_offset": 0, "token_ids": [7, 3, 6]})
    >>> v.context_ids, v.scored_ids
    ([1], [7, 3, 6])
    """
    if branch.get("kind") == "repair":
        return SequenceView(of_rollout(parent).prompt_ids, [], [], list(branch["token_ids"]))
    return of_prefix(parent, branch["branch_token_offset"]).with_completion(branch["token_ids"])


def of_archive_entry(entry: dict) -> SequenceView:
    """An ``archive`` entry: the problem's prompt and the archived good prefix a replay starts after (no completion).

    >>> of_archive_entry({"context_token_ids": [1, 2, 3], "archived_prefix_token_count": 1}).archived_ids
    [3]
    """
    prompt, archived = _split(entry["context_token_ids"], entry["archived_prefix_token_count"])
    return SequenceView(prompt, archived)
