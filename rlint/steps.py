"""Splitting a completion into steps, with boundaries as token offsets.

A step ends with the task's delimiter ("\\n" for the embedded task: one line per step). The
boundary is the token whose text completes the delimiter; text after the last delimiter (an
unfinished line) is a final step of its own. Special tokens (eos) belong to no step.
"""

from __future__ import annotations


def step_ends(token_texts: list[str], delimiter: str) -> list[int]:
    """Exclusive end offsets of each step in a completion of ``len(token_texts)`` tokens.

    ``token_texts[i]`` is the decoded text of token i ("" for special tokens).

    >>> step_ends(list("1+2=3\\nA:3\\n"), "\\n")
    [6, 10]
    >>> step_ends(list("1+2=3\\nA:") + [""], "\\n")
    [6, 8]
    >>> step_ends([], "\\n")
    []
    """
    ends: list[int] = []
    text = ""
    searched = 0  # text before this index holds no unseen delimiter
    last_content = 0  # offset after the last token that carried text
    for i, piece in enumerate(token_texts):
        if piece:
            text += piece
            last_content = i + 1
        found = text.find(delimiter, searched)
        if found >= 0:
            ends.append(i + 1)
            searched = found + len(delimiter)
        else:
            searched = max(searched, len(text) - len(delimiter) + 1)
    if last_content > (ends[-1] if ends else 0):
        ends.append(last_content)
    return ends


def prefix_offset(step_ends: list[int], steps: int) -> int:
    """Token offset where the first ``steps`` steps of a completion end (0: none of them).

    >>> prefix_offset([6, 10], 0), prefix_offset([6, 10], 1), prefix_offset([6, 10], 2)
    (0, 6, 10)
    """
    return step_ends[steps - 1] if steps > 0 else 0


def prefix_context(rollout: dict, offset: int) -> list[int]:
    """Token ids a continuation of a rollout's first ``offset`` completion tokens was sampled from.

    ``rollout`` is a row of the ``rollouts`` dataset: its prompt token ids (an archived prefix
    included) followed by ``token_ids[:offset]``.

    >>> prefix_context({"prompt_token_ids": [1, 2], "token_ids": [3, 4, 5]}, 2)
    [1, 2, 3, 4]
    """
    return list(rollout["prompt_token_ids"]) + list(rollout["token_ids"][:offset])


def token_texts(tokenizer, token_ids: list[int]) -> list[str]:
    """Decoded text of each token; special tokens decode to ""."""
    special = set(tokenizer.all_special_ids)
    return ["" if t in special else tokenizer.decode([t]) for t in token_ids]
