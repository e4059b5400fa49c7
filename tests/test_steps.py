from hypothesis import given, settings
from hypothesis import strategies as st

from rlint.steps import step_ends

pieces = st.lists(st.sampled_from(["1", "2", "+", "=", "\n", "A:", "\n\n", "x", ""]), max_size=30)


@given(pieces)
@settings(max_examples=300, deadline=None)
def test_step_ends_match_line_splitting(tokens):
    """Per-character tokens: step k ends right after the k-th newline (or at the last text)."""
    chars = [c for piece in tokens for c in piece]  # one token per character
    ends = step_ends(chars, "\n")
    expected = [i + 1 for i, c in enumerate(chars) if c == "\n"]
    if chars and (not expected or expected[-1] < len(chars)):
        expected.append(len(chars))
    assert ends == expected


def test_multi_token_delimiter_and_special_tokens():
    tokens = ["a", "\n", "\n", "b", "\n", "\n", ""]
    assert step_ends(tokens, "\n\n") == [3, 6]
    assert step_ends(["a", "b", ""], "\n") == [2]


texts = st.text(alphabet=st.sampled_from(["a", "b", " ", "\n", "\n", "="]), max_size=40)


def _random_split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:])]


@given(texts, st.lists(st.integers(0, 60), max_size=20), st.sampled_from(["\n", "\n\n"]), st.booleans())
@settings(max_examples=400, deadline=None)
def test_same_boundaries_whatever_the_tokenization(text, cuts, delimiter, merge_empty):
    """Any split of the same text into tokens: each step ends at the token that completes its delimiter,
    so in characters every boundary is the end of the first token reaching the per-character boundary."""
    from rlint.steps import step_char_ends

    tokens = _random_split(text, cuts)
    char_ends = step_char_ends(text, delimiter, merge_empty)
    token_offsets = [sum(len(t) for t in tokens[:i + 1]) for i in range(len(tokens))]
    expected = []
    for c in char_ends:
        end = next(i + 1 for i, off in enumerate(token_offsets) if off >= c)
        if not expected or expected[-1] != end:
            expected.append(end)
    assert step_ends(tokens, delimiter, merge_empty) == expected
    per_char = step_ends(list(text), delimiter, merge_empty)
    assert [c for c in per_char] == char_ends  # one token per character: the character boundaries themselves
    if merge_empty and len(char_ends) > 1:  # no step is blank (unless the whole text is)
        starts = [0] + char_ends[:-1]
        assert all(text[a:b].strip() for a, b in zip(starts, char_ends))


def test_a_token_holding_two_delimiters_ends_one_step():
    assert step_ends(["a", "\n\n", "b", "c"], "\n") == [2, 4]
    assert step_ends(["a", "\n\n", "b", "c"], "\n", merge_empty=True) == [2, 4]
    assert step_ends(list("a\n\nbc"), "\n") == [2, 3, 5] and step_ends(list("a\n\nbc"), "\n", merge_empty=True) == [3, 5]
