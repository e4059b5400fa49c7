"""A real task: math problems with reference answers, read from a local Parquet or JSONL file.

Each row holds a question, a reference answer and (optionally) an id. The reference may be
GSM8K-style worked text ending in ``#### 42``; only the part after ``####`` is kept. Rows are
split into train and held-out by a stable hash of ``(seed, id)``, so the splits are disjoint
and (given an id column) do not move when rows are added or reordered.

The outcome verifier extracts the model's final answer from its completion and compares it to
the reference with math-verify (``parse`` + ``verify``), which handles integers, decimals,
fractions, LaTeX and simple expressions. The dataset task has no ground-truth step checker.

Untrusted completions are bounded before they reach sympy: only the tail of a completion is
read, answer candidates are short, constructs that sympy evaluates eagerly (binomials, gcd,
matrices, sums, huge powers, factorials) are refused, and math-verify's own timeouts are used
whenever the caller runs on the main thread (they are built on ``signal.alarm``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import threading
from pathlib import Path

import sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from rlint.tasks.base import DEFAULT_REPAIR_TEMPLATE, Problem, TaskInputError, check_repair_template

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
_LATEX_ONLY = [LatexExtractionConfig()]
_PLAIN_AND_LATEX = [LatexExtractionConfig(), ExprExtractionConfig()]
MAX_POWER = 1_000  # largest exponent (product of nested exponents) allowed in an answer
MAX_SYMBOLIC_POWER = 10  # ... when the base is a compound with variables: sympy expands (x+1)^n
MAX_FACTORIAL = 1_000  # largest n allowed in n!


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


def _too_costly(expr: sympy.Basic, scale: int = 1) -> bool:
    """True when comparing ``expr`` could take unbounded time: huge powers or factorials.

    ``scale`` is the product of the exponents above ``expr``, so ``(10^1000)^1000`` is caught.
    """
    if isinstance(expr, sympy.Pow):
        exponent = expr.exp
        if exponent.free_symbols:  # 2^n: symbolic, nothing to evaluate
            return _too_costly(expr.base, scale)
        # Simplifying (x+y+1)^30 expands it: seconds to minutes, so symbolic bases get a low cap.
        limit = MAX_POWER if expr.base.is_Atom or not expr.base.free_symbols else MAX_SYMBOLIC_POWER
        if not exponent.is_Number or abs(exponent) * scale > limit:
            return True
        return _too_costly(expr.base, scale * max(1, math.ceil(abs(exponent))))
    if isinstance(expr, (sympy.factorial, sympy.factorial2, sympy.subfactorial, sympy.gamma)):
        (argument,) = expr.args
        return not (argument.is_Number and abs(argument) <= MAX_FACTORIAL)
    if isinstance(expr, (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.MatrixBase)):
        return True
    return any(_too_costly(arg, scale) for arg in expr.args if isinstance(arg, sympy.Basic))


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
    if any(isinstance(item, sympy.Basic) and _too_costly(item) for item in parsed):
        return None
    return parsed


def math_answer_reward(completion: str, reference: str) -> float | None:
    """1.0 when the completion's final answer equals ``reference``, 0.0 when not, None when unscorable.

    The first candidate of :func:`answer_candidates` that math-verify can parse is the answer.
    None: no candidate parses, or the reference itself cannot be parsed. An answer too costly to
    evaluate (say ``9^{9^{9}}``) scores 0.0, like one that times out.

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
    gold = _parse(reference_answer(str(reference)))
    if not gold:
        return None
    _, verify_timeout = _timeouts()
    for candidate in answer_candidates(completion):
        predicted = _parse(candidate)
        if predicted is None:
            return 0.0
        if predicted:
            same = verify(gold, predicted, timeout_seconds=verify_timeout, raise_on_error=False)
            return 1.0 if same else 0.0
    return None


# -- loading -----------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    """Rows of a JSONL file as ``(where, row)``; ``where`` is "line N" (1-based). Blank lines are skipped."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise TaskInputError(f"{path}: line {line}: not valid UTF-8") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskInputError(f"{path}: line {number}: invalid JSON: {err.msg}") from None
        if not isinstance(row, dict):
            raise TaskInputError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append((f"line {number}", row))
    return rows


def _read_parquet(path: Path, fields: list[str]) -> list[tuple[str, dict]]:
    """Rows of a Parquet file as ``(where, row)``; ``where`` is "row N" (1-based)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TaskInputError(f"{path}: not a readable Parquet file: {reason}") from None
    for field in fields:  # columns are known up front: name the missing one once, not per row
        if field not in table.column_names:
            raise TaskInputError(f"{path}: field {field!r} not found; columns: {', '.join(table.column_names)}")
    return [(f"row {number}", row) for number, row in enumerate(table.select(fields).to_pylist(), start=1)]


def _field(path: Path, where: str, row: dict, field: str):
    if field not in row:
        raise TaskInputError(f"{path}: {where}: field {field!r} missing")
    return row[field]


def _question(path: Path, where: str, value, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaskInputError(f"{path}: {where}: field {field!r} must be a non-empty string, got {value!r:.60}")
    return value


def _answer(path: Path, where: str, value, field: str) -> str:
    """The reference answer as text: numbers are converted, GSM8K ``#### x`` is reduced to ``x``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise TaskInputError(f"{path}: {where}: field {field!r} is not a finite number: {value}")
        value = str(value)
    if not isinstance(value, str):
        raise TaskInputError(f"{path}: {where}: field {field!r} must be a string or a number, got {value!r:.60}")
    answer = reference_answer(value)
    if not answer:
        raise TaskInputError(f"{path}: {where}: field {field!r} is empty")
    return answer


def _problem_id(path: Path, where: str, value, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise TaskInputError(f"{path}: {where}: field {field!r} must be a non-empty string or an integer, got {value!r:.60}")
    return str(value)


class DatasetTask:
    """Math problems with reference answers from a Parquet (``.parquet``) or JSONL (``.jsonl``) file.

    Without ``id_field``, a problem's id is its 0-based position among the file's rows.
    ``prompt_template`` turns a question into the prompt; it may only use ``{question}``.
    """

    name = "dataset"
    has_step_checker = False

    def __init__(
        self,
        path: str | Path,
        question_field: str = "question",
        answer_field: str = "answer",
        id_field: str | None = None,
        prompt_template: str = "{question}\n",
        step_delimiter: str = "\n",
        heldout_share: float = 0.2,
        seed: int = 0,
        repair_template: str = DEFAULT_REPAIR_TEMPLATE,
        repair_chat: bool = False,
    ) -> None:
        check_repair_template(repair_template)
        if not 0.0 <= heldout_share <= 1.0:
            raise TaskInputError(f"task.heldout_share={heldout_share}: must be in [0, 1]")
        try:
            prompt_template.format(question="")
        except (KeyError, IndexError, ValueError) as err:
            raise TaskInputError(f"task.prompt_template={prompt_template!r}: use only {{question}} ({err!r})") from None
        self.path = Path(path)
        self.question_field, self.answer_field, self.id_field = question_field, answer_field, id_field
        self.prompt_template = prompt_template
        self.step_delimiter = step_delimiter
        self.heldout_share = heldout_share
        self.seed = seed
        self.repair_template, self.repair_chat = repair_template, repair_chat
        self._questions: dict[str, str] = {}
        self._splits: dict[str, list[Problem]] = {"train": [], "heldout": []}
        for problem in self._load():
            self._splits[self.split_of(problem.problem_id)].append(problem)

    # -- problems ---------------------------------------------------------------------------
    def _load(self) -> list[Problem]:
        """Every row as a Problem, in file order; every validation error names the file and row."""
        path = self.path
        if not path.is_file():
            raise TaskInputError(f"{path}: file not found")
        fields = [f for f in (self.question_field, self.answer_field, self.id_field) if f is not None]
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            rows = _read_jsonl(path)
        elif suffix == ".parquet":
            rows = _read_parquet(path, fields)
        else:
            raise TaskInputError(f"{path}: unknown extension {path.suffix!r}; use .parquet or .jsonl")
        if not rows:
            raise TaskInputError(f"{path}: no problems (empty file)")
        problems, first_seen = [], {}
        for index, (where, row) in enumerate(rows):
            question = _question(path, where, _field(path, where, row, self.question_field), self.question_field)
            answer = _answer(path, where, _field(path, where, row, self.answer_field), self.answer_field)
            if self.id_field is None:
                problem_id = str(index)
            else:
                problem_id = _problem_id(path, where, _field(path, where, row, self.id_field), self.id_field)
            if problem_id in first_seen:
                raise TaskInputError(f"{path}: {where}: duplicate id {problem_id!r} (first at {first_seen[problem_id]})")
            first_seen[problem_id] = where
            self._questions[problem_id] = question
            problems.append(Problem(problem_id, self.prompt_template.format(question=question), answer))
        return problems

    def repair_prompt(self, problem_id: str, prompt: str, attempt: str) -> str:
        """``task.repair_template`` with the problem's question and the failed attempt (the chat template is applied by the caller)."""
        return self.repair_template.replace("{question}", self._questions.get(problem_id, prompt)).replace("{attempt}", attempt)

    def split_of(self, problem_id: str) -> str:
        """"heldout" or "train": a stable hash of ``(seed, id)`` against ``heldout_share``."""
        digest = hashlib.sha256(f"rlint-dataset/{self.seed}/{problem_id}".encode()).digest()
        return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < self.heldout_share else "train"

    def split_size(self, split: str) -> int:
        return len(self._split(split))

    def _split(self, split: str) -> list[Problem]:
        if split not in self._splits:
            raise TaskInputError(f"split={split!r}: use 'train' or 'heldout'")
        return self._splits[split]

    def problems(self, split: str, start: int, count: int) -> list[Problem]:
        """Problems ``start .. start+count-1`` of ``split``, in file order.

        Indices wrap around: past the end of the split, problems repeat from its beginning, so
        a run may ask for more rounds of problems than the file holds. Raises TaskInputError
        when the split is empty.
        """
        problems = self._split(split)
        if start < 0 or count < 0:
            raise TaskInputError(f"problems(start={start}, count={count}): both must be >= 0")
        if not problems:
            raise TaskInputError(f"{self.path}: split {split!r} is empty (heldout_share={self.heldout_share}, seed={self.seed})")
        return [problems[(start + offset) % len(problems)] for offset in range(count)]

    # -- verifiers --------------------------------------------------------------------------
    def reward(self, completion: str, answer: str) -> float | None:
        """1.0 right, 0.0 wrong, None unscorable: see :func:`math_answer_reward`."""
        return math_answer_reward(completion, answer)

    def answer_text(self, answer: str) -> str:
        """The final answer written GSM8K-style, as the reference answers are (``credit.answer_text`` overrides it).

        >>> DatasetTask.answer_text(None, "42")
        '#### 42\\n'
        """
        return f"#### {answer}\n"

    def well_formed(self, completion: str) -> bool:
        """Format gate: the completion has a final answer that can be read (see :func:`answer_candidates`).

        >>> DatasetTask.well_formed(None, "2+2 is 4.\\n#### 4"), DatasetTask.well_formed(None, "I am not sure.")
        (True, False)
        """
        return bool(answer_candidates(completion))

    def first_error_step(self, problem: Problem, completion: str) -> int | None:
        raise TaskInputError("task 'dataset' has no ground-truth step checker (use mode 'outcome' or 'internalized')")
