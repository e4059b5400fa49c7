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
