"""Splitting a completion into steps, with boundaries as token offsets.

A step ends with the task's delimiter ("\\n" for the embedded task: one line per step). The
boundary is the token whose text completes the delimiter; text after the last delimiter (an
unfinished line) is a final step of its own. Special tokens (eos) belong to no step.
"""

from __future__ import annotations


def step_char_ends(text: str, delimiter: str, merge_empty: bool = False) -> list[int]:
    """Exclusive character end of each step of ``text``: after each delimiter, and at the end of a
    final unfinished step that has text.

    ``merge_empty``: a step with nothing but whitespace before its delimiter (a blank line between
    paragraphs) joins the step before it (or, at the start, the step after it); trailing whitespace
    joins the last step.

    >>> step_char_ends("a\\nb\\n", "\\n"), step_char_ends("a\\n\\nb", "\\n"), step_char_ends("a\\n\\nb", "\\n", merge_empty=True)
    ([2, 4], [2, 3, 4], [3, 4])
    >>> step_char_ends("\\n\\na\\n \\n", "\\n", merge_empty=True)
    [6]
    """
    ends: list[int] = []
    start = 0  # where the current step began
    at = text.find(delimiter)
    while at >= 0:
        end = at + len(delimiter)
        if merge_empty and not text[start:at].strip():
            if ends:
                ends[-1] = end  # a blank step joins the previous one
                start = end
            # at the start: it joins the next step (start stays)
        else:
            ends.append(end)
            start = end
        at = text.find(delimiter, end)
    if len(text) > (ends[-1] if ends else 0):
        if merge_empty and ends and not text[ends[-1]:].strip():
            ends[-1] = len(text)
        else:
            ends.append(len(text))
    return ends


def step_ends(token_texts: list[str], delimiter: str, merge_empty: bool = False) -> list[int]:
    """Exclusive end offsets of each step in a completion of ``len(token_texts)`` tokens.

    ``token_texts[i]`` is the decoded text of token i ("" for special tokens). A step ends at the
    token whose text completes its delimiter (:func:`step_char_ends` on the joined text); steps
    whose ends fall in the same token are one step (a token holding two delimiters ends one step,
    not two), so the boundaries are the same for any tokenization of the same text up to that rule.

    >>> step_ends(list("1+2=3\\nA:3\\n"), "\\n")
    [6, 10]
    >>> step_ends(list("1+2=3\\nA:") + [""], "\\n")
    [6, 8]
    >>> step_ends(["a", "\\n\\n", "b", "c"], "\\n")
    [2, 4]
    >>> step_ends([], "\\n")
    []
    """
    text_ends = step_char_ends("".join(token_texts), delimiter, merge_empty)
    ends: list[int] = []
    offset, k = 0, 0
    for i, piece in enumerate(token_texts):
        offset += len(piece)
        while k < len(text_ends) and text_ends[k] <= offset:
            if piece and (not ends or ends[-1] != i + 1):
                ends.append(i + 1)
            k += 1
    return ends


def prefix_offset(step_ends: list[int], steps: int) -> int:
    """Token offset where the first ``steps`` steps of a completion end (0: none of them).

    >>> prefix_offset([6, 10], 0), prefix_offset([6, 10], 1), prefix_offset([6, 10], 2)
    (0, 6, 10)
    """
    return step_ends[steps - 1] if steps > 0 else 0


def token_texts(tokenizer, token_ids: list[int]) -> list[str]:
    """Decoded text of each token; special tokens decode to ""."""
    special = set(tokenizer.all_special_ids)
    return ["" if t in special else tokenizer.decode([t]) for t in token_ids]
