"""The math outcome verifier: the final answer of a completion against a reference answer, with math-verify.

The verifier extracts the model's final answer from its completion and compares it to the
reference with math-verify (``parse`` + ``verify``), which handles integers, decimals,
fractions, LaTeX and simple expressions.

Untrusted completions are bounded before they reach sympy: only the tail of a completion is
read, answer candidates are short, constructs that sympy evaluates eagerly (binomials, gcd,
matrices, sums) are refused, a cost model over the whole parsed expression refuses huge powers,
products of powers and factorials (unscorable: None), and a comparison that is not cheap runs in
a worker process with a hard time limit (rlint/tasks/bounded.py); math-verify's own timeouts
(``signal.alarm``) are used whenever the caller runs on the main thread.
"""

from __future__ import annotations

import functools
import logging
import re
import threading

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from rlint.tasks.bounded import CHEAP_DIGITS, CHEAP_TERMS, MAX_DIGITS, MAX_TERMS, bounded_reward, combined_cost

# -- answer extraction -----------------------------------------------------------------------
MAX_COMPLETION_CHARS = 2_000  # only the tail of a completion is read: the answer is at the end
MAX_ANSWER_CHARS = 200  # a longer "answer" is not a final answer, and costs sympy time to parse
PARSE_TIMEOUT_S = 2  # math-verify timeouts: whole seconds (signal.alarm), main thread only
VERIFY_TIMEOUT_S = 2

_BOXED = re.compile(r"\\boxed\s*\{")
_ANSWER_PHRASE = re.compile(r"answer is|answer:", re.IGNORECASE)
# A number, optionally negative (a minus right after a word or digit is a subtraction), with
# comma thousands separators, decimals, or a simple fraction ``a/b``.
_NUMBER = re.compile(r"(?:(?<![\w).])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?")
_WORD = re.compile(r"[A-Za-z]{2}")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# LaTeX that latex2sympy evaluates while parsing, or that sympy may take unbounded time to
# compare: refused before parsing, since off the main thread nothing can interrupt it.
_COSTLY_TEXT = re.compile(
    r"binom|choose|gcd|lcm|operatorname|gamma|\\det|\\begin|\\sum|\\prod|\\int|\\lim",
    re.IGNORECASE,
)
_OPERATOR = re.compile(r"[-+*/^()×÷]")  # what math-verify's plain-expression reader (sympy.parse_expr, eval) needs to match
# math-verify warns on every parse without a timeout (off the main thread, and the warm-up): rlint bounds
# those itself (rlint/tasks/bounded.py), and a refusal must stay one line on stderr
logging.getLogger("math_verify.parser").addFilter(lambda record: "Timeout is disabled" not in record.getMessage())
_LATEX_ONLY = [LatexExtractionConfig()]
_PLAIN_AND_LATEX = [LatexExtractionConfig(), ExprExtractionConfig()]


def reference_answer(raw: str) -> str:
    """The answer part of a reference: the text after the last ``####``, commas dropped.

    >>> reference_answer("Half of 48 is <<48/2=24>>24.\\n#### 1,234")
    '1234'
    >>> reference_answer("\\\\frac{1}{2}")
    '\\\\frac{1}{2}'
    """
    if "####" in raw:
        raw = raw.rsplit("####", 1)[1]
    return _THOUSANDS_COMMA.sub("", raw.strip())


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` whose braces balance, or None."""
    for match in reversed(list(_BOXED.finditer(text))):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            if depth == 0:
                return text[start:index]
    return None


def _after_last_hashes(text: str) -> str | None:
    """The rest of the line after the last ``####``, or None."""
    if "####" not in text:
        return None
    return text.rsplit("####", 1)[1].split("\n", 1)[0]


def _answer_line(text: str) -> str | None:
    """What follows ``A:`` or "answer is" on the last line that has one, or None."""
    for line in reversed(text.split("\n")):
        stripped = line.strip()
        if stripped.startswith("A:"):
            return stripped[2:]
        phrases = list(_ANSWER_PHRASE.finditer(line))
        if phrases:
            return line[phrases[-1].end():]
    return None


def _last_number(text: str) -> str | None:
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def answer_candidates(completion: str) -> list[str]:
    """Possible final answers in order of preference; only the completion's tail is read.

    The last ``\\boxed{}``, then the text after the last ``####``, then the last ``A:`` /
    "answer is" line, then the last number.

    >>> answer_candidates("So 3+4=7.\\nThe answer is \\\\boxed{7}.")
    ['7', ' \\\\boxed{7}.', '7']
    """
    tail = completion[-MAX_COMPLETION_CHARS:]
    found = (_last_boxed(tail), _after_last_hashes(tail), _answer_line(tail), _last_number(tail))
    return [candidate for candidate in found if candidate is not None and candidate.strip()]


# -- parsing and comparing with math-verify ----------------------------------------------------
def _timeouts() -> tuple[int | None, int | None]:
    """math-verify's (parse, verify) timeouts for the calling thread.

    math-verify times out with ``signal.alarm``, which only works on the main thread: anywhere
    else, passing a timeout makes ``parse``/``verify`` raise ValueError. Off the main thread the
    timeouts are disabled and the text and expression guards below are the only bound.
    """
    _warm_up()
    if threading.current_thread() is threading.main_thread():
        return PARSE_TIMEOUT_S, VERIFY_TIMEOUT_S
    return None, None


@functools.cache
def _warm_up() -> None:
    """Build math-verify's LaTeX grammar once, untimed: the first LaTeX parse of a process spends
    seconds on it, which a loaded machine would otherwise charge to the first answer's timeout."""
    parse("$x^2+1$", extraction_config=_LATEX_ONLY, parsing_timeout=None, raise_on_error=False)


def _normalize(text: str) -> str:
    """Trim what surrounds an answer: spaces, a final period, thousands commas, a percent sign."""
    text = _THOUSANDS_COMMA.sub("", text.strip().rstrip("."))
    # "50%" and "50" both mean 50 in word problems; math-verify would read "50%" as 0.5.
    return re.sub(r"\\?%$", "", text).strip()


def _parse(text: str) -> list | None:
    """math-verify's parse of one answer; [] when nothing parses, None when it is too costly."""
    text = _normalize(text)
    if not text or len(text) > MAX_ANSWER_CHARS:
        return []
    if _COSTLY_TEXT.search(text):
        return None
    # Bare LaTeX needs $...$ to be read as LaTeX: unwrapped, "3 \cdot 4" parses as 4 and "5!" as 5.
    # Plain text is tried unwrapped first: wrapped, "18 dollars" becomes a product of symbols.
    # Unwrapped, math-verify only reads numbers, so "x^2+1" is retried as LaTeX unless it has words.
    parsing_timeout, _ = _timeouts()
    latex = f"${text}$" if "$" not in text else text
    looks_latex = "$" in text or any(mark in text for mark in "\\{!")
    # math-verify's plain-expression reader hands "2+3" to sympy.parse_expr, which runs Python's eval on
    # it; text with an operator goes to its LaTeX reader (a grammar, no eval) instead. Without an
    # operator the plain reader only reads numbers, which it converts without eval.
    operator = _OPERATOR.search(text.lstrip("-")) is not None
    config = _LATEX_ONLY if operator else _PLAIN_AND_LATEX
    if operator:
        looks_latex = True
    parsed = parse(latex if looks_latex else text, extraction_config=config, parsing_timeout=parsing_timeout, raise_on_error=False)
    if not parsed and not looks_latex and not _WORD.search(text):
        parsed = parse(latex, extraction_config=config, parsing_timeout=parsing_timeout, raise_on_error=False)
    terms, digits = combined_cost(parsed)
    if terms > MAX_TERMS or digits > MAX_DIGITS:
        return None
    return parsed


def compare_texts(gold_text: str, candidate_text: str) -> float | None:
    """1.0 / 0.0: math-verify's verdict on two answer texts; None when either cannot be read or is too costly.

    What :class:`rlint.tasks.bounded.BoundedVerifier`'s worker runs (on its main thread).
    """
    gold, predicted = _parse(gold_text), _parse(candidate_text)
    if not gold or not predicted:
        return None
    _, verify_timeout = _timeouts()
    return 1.0 if verify(gold, predicted, timeout_seconds=verify_timeout, raise_on_error=False) else 0.0


def math_answer_reward(completion: str, reference: str) -> float | None:
    """1.0 when the completion's final answer equals ``reference``, 0.0 when not, None when unscorable.

    The first candidate of :func:`answer_candidates` that math-verify can parse is the answer.
    None: no candidate parses, the reference itself cannot be parsed, or the answer is too costly to
    compare (say ``9^{9^{9}}``, or a product of large symbolic powers: rlint/tasks/bounded.py). A
    comparison above the cheap limits runs in a worker process killed after
    ``bounded.HARD_TIMEOUT_S``, so the reward is bounded in any thread.

    >>> math_answer_reward("3/4 of 12 is 9.\\n#### 9", "9")
    1.0
    >>> math_answer_reward("The answer is \\\\boxed{\\\\frac{3}{4}}", "0.75")
    1.0
    >>> math_answer_reward("So she has 1,234 clips.", "#### 1234")
    1.0
    >>> math_answer_reward("A: 41", "42")
    0.0
    >>> math_answer_reward("I do not know.", "42") is None
    True
    """
    gold_text = reference_answer(str(reference))
    gold = _parse(gold_text)
    if not gold:
        return None
    _, verify_timeout = _timeouts()
    for candidate in answer_candidates(completion):
        predicted = _parse(candidate)
        if predicted is None:
            return None
        if predicted:
            terms, digits = combined_cost(gold, predicted)
            if terms > MAX_TERMS or digits > MAX_DIGITS:
                return None
            if terms <= CHEAP_TERMS and digits <= CHEAP_DIGITS:  # nearly every answer: compared here
                same = verify(gold, predicted, timeout_seconds=verify_timeout, raise_on_error=False)
                return 1.0 if same else 0.0
            return bounded_reward(gold_text, candidate)
    return None
