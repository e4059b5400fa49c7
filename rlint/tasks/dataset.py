"""A real task: math problems with reference answers, read from a local Parquet or JSONL file.

Each row holds a question, a reference answer and (optionally) an id. The reference may be
GSM8K-style worked text ending in ``#### 42``; only the part after ``####`` is kept. Rows are
split into train and held-out by a stable hash of ``(seed, id)``, so the splits are disjoint
and (given an id column) do not move when rows are added or reordered.

The outcome verifier is :func:`rlint.tasks.math_answer.math_answer_reward` (math-verify, bounded
in time in any thread). Every reference answer must be scorable by it, and sizes stay within
``params.limits``. The dataset task has no ground-truth step checker.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from pathlib import Path

from rlint.config import LimitsConfig, check_prompt_template
from rlint.tasks.math_answer import MAX_ANSWER_CHARS, answer_candidates, math_answer_reward, reference_answer
from rlint.tasks.base import DEFAULT_REPAIR_TEMPLATE, Problem, TaskInputError, check_repair_template

__all__ = ["DatasetTask", "answer_candidates", "math_answer_reward", "reference_answer"]


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
        except RecursionError:
            raise TaskInputError(f"{path}: line {number}: JSON nested too deeply") from None
        except ValueError as err:  # an integer beyond Python's digit limit (4,300 digits)
            raise TaskInputError(f"{path}: line {number}: invalid JSON: {str(err).split(';')[0]}") from None
        if not isinstance(row, dict):
            raise TaskInputError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append((f"line {number}", row))
    return rows


def _read_parquet(path: Path, fields: list[str]) -> tuple[list[tuple[str, dict]], frozenset[str]]:
    """Rows of a Parquet file as ``(where, row)`` (``where`` is "row N", 1-based) and its column names."""
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
    return [(f"row {number}", row) for number, row in enumerate(table.select(fields).to_pylist(), start=1)], frozenset(table.column_names)


def _field(path: Path, where: str, row: dict, field: str):
    if field not in row:
        raise TaskInputError(f"{path}: {where}: field {field!r} missing")
    return row[field]


def _unicode(path: Path, where: str, value: str, field: str) -> str:
    """``value`` if it encodes as UTF-8: JSON's ``"\\ud800"`` decodes to a lone surrogate, which no tokenizer or file takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise TaskInputError(f"{path}: {where}: field {field!r} is not valid Unicode (a lone surrogate at character {err.start + 1})") from None
    return value


def _question(path: Path, where: str, value, field: str, max_chars: int = 20_000) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaskInputError(f"{path}: {where}: field {field!r} must be a non-empty string, got {value!r:.60}")
    if len(value) > max_chars:
        raise TaskInputError(f"{path}: {where}: field {field!r} has {len(value)} characters, more than limits.max_question_chars={max_chars} "
                             "(raise it in params.yaml to accept it)")
    return _unicode(path, where, value, field)


def _answer(path: Path, where: str, value, field: str, max_chars: int = MAX_ANSWER_CHARS) -> str:
    """The reference answer as text: numbers are converted, GSM8K ``#### x`` is reduced to ``x``; it must be scorable.

    Scorable: a completion ending in ``#### <answer>`` scores 1.0 against it. A reference that
    math-verify cannot read, or that is too costly to compare, would score every completion None.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise TaskInputError(f"{path}: {where}: field {field!r} is not a finite number: {value}")
        value = str(value)
    if not isinstance(value, str):
        raise TaskInputError(f"{path}: {where}: field {field!r} must be a string or a number, got {value!r:.60}")
    answer = reference_answer(_unicode(path, where, value, field))
    if not answer:
        raise TaskInputError(f"{path}: {where}: field {field!r} is empty")
    if len(answer) > max_chars:
        raise TaskInputError(f"{path}: {where}: field {field!r} has {len(answer)} characters, more than limits.max_answer_chars={max_chars}")
    if not _scorable(answer):
        raise TaskInputError(f"{path}: {where}: field {field!r} = {answer!r:.60} cannot be scored (a completion ending in "
                             "'#### ' and this answer would not score 1)")
    return answer


_PLAIN_NUMBER = re.compile(r"-?\d{1,30}(?:\.\d{1,30})?")


@functools.lru_cache(maxsize=65_536)
def _scorable(answer: str) -> bool:
    """A completion that writes exactly ``answer`` the way answers are written scores 1.0 against it."""
    return _PLAIN_NUMBER.fullmatch(answer) is not None or math_answer_reward(f"#### {answer}\n", answer) == 1.0


def _problem_id(path: Path, where: str, value, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise TaskInputError(f"{path}: {where}: field {field!r} must be a non-empty string or an integer, got {value!r:.60}")
    if len(str(value)) > 200:
        raise TaskInputError(f"{path}: {where}: field {field!r} has {len(str(value))} characters; ids have at most 200")
    return _unicode(path, where, str(value), field)


class DatasetTask:
    """Math problems with reference answers from a Parquet (``.parquet``) or JSONL (``.jsonl``) file.

    Without ``id_field``, a problem's id is its 0-based position among the file's rows.
    ``prompt_template`` turns a question into the prompt; it may only use ``{question}``.
    The held-out split is a stable hash share of the file (``heldout_share``), or, with
    ``heldout_path``, every row of that second file (same format and columns; ``heldout_share`` is
    then unused); its ids without ``id_field`` are ``heldout/<position>``, and an id found in both
    files is refused.
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
        merge_empty_steps: bool = True,
        heldout_share: float = 0.2,
        seed: int = 0,
        heldout_path: str | Path | None = None,
        limits=None,
        repair_template: str = DEFAULT_REPAIR_TEMPLATE,
        repair_chat: bool = False,
        chat_template: bool = False,
        system_prompt: str | None = None,
    ) -> None:
        check_repair_template(repair_template)
        if not 0.0 <= heldout_share <= 1.0:
            raise TaskInputError(f"task.heldout_share={heldout_share}: must be in [0, 1]")
        check_prompt_template(prompt_template, TaskInputError)
        self.path = Path(path)
        self.question_field, self.answer_field, self.id_field = question_field, answer_field, id_field
        self.prompt_template = prompt_template
        self.step_delimiter = step_delimiter
        self.merge_empty_steps = merge_empty_steps
        self.heldout_share = heldout_share
        self.seed = seed
        self.heldout_path = None if heldout_path is None else Path(heldout_path)
        self.limits = limits if limits is not None else LimitsConfig()
        self.repair_template, self.repair_chat = repair_template, repair_chat
        self.chat_template, self.system_prompt = chat_template, system_prompt
        self._questions: dict[str, str] = {}
        self._splits: dict[str, list[Problem]] = {"train": [], "heldout": []}
        problems, columns = self._load(self.path)
        if self.heldout_path is None:
            for problem in problems:
                self._splits[self.split_of(problem.problem_id)].append(problem)
            return
        heldout, heldout_columns = self._load(self.heldout_path, id_prefix="heldout/")
        if heldout_columns != columns:
            raise TaskInputError(f"{self.heldout_path}: task.heldout_path: columns {', '.join(sorted(heldout_columns))} differ from "
                                 f"{self.path}'s ({', '.join(sorted(columns))})")
        train_ids = {p.problem_id for p in problems}
        shared = next((p.problem_id for p in heldout if p.problem_id in train_ids), None)
        if shared is not None:
            raise TaskInputError(f"{self.heldout_path}: task.heldout_path: id {shared!r} is also in {self.path}; the splits must be disjoint")
        self._splits = {"train": problems, "heldout": heldout}

    # -- problems ---------------------------------------------------------------------------
    def _load(self, path: Path, id_prefix: str = "") -> tuple[list[Problem], frozenset[str]]:
        """Every row of ``path`` as a Problem, in file order, and the file's columns (a JSONL file's:
        the keys of its first row); every validation error names the file and row."""
        try:
            size = path.stat().st_size  # follows links: a link loop is an OSError here
        except FileNotFoundError:
            raise TaskInputError(f"{path}: file not found") from None
        except OSError as err:
            raise TaskInputError(f"{path}: cannot be read: {err.strerror or type(err).__name__}") from None
        if not path.is_file():
            raise TaskInputError(f"{path}: {'is a directory' if path.is_dir() else 'not a regular file'}; task.path must name a .parquet or .jsonl file")
        if size > self.limits.max_file_bytes:
            raise TaskInputError(f"{path}: {size} bytes, more than limits.max_file_bytes={self.limits.max_file_bytes} "
                                 "(raise it in params.yaml to accept the file)")
        fields = [f for f in (self.question_field, self.answer_field, self.id_field) if f is not None]
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".parquet"):
            raise TaskInputError(f"{path}: unknown extension {path.suffix!r}; use .parquet or .jsonl")
        try:
            if suffix == ".jsonl":
                rows = _read_jsonl(path)
                columns = frozenset(rows[0][1]) if rows else frozenset()
            else:
                rows, columns = _read_parquet(path, fields)
        except OSError as err:
            raise TaskInputError(f"{path}: cannot be read: {err.strerror or type(err).__name__}") from None
        if not rows:
            raise TaskInputError(f"{path}: no problems (empty file)")
        problems, first_seen = [], {}
        for index, (where, row) in enumerate(rows):
            question = _question(path, where, _field(path, where, row, self.question_field), self.question_field, self.limits.max_question_chars)
            answer = _answer(path, where, _field(path, where, row, self.answer_field), self.answer_field, self.limits.max_answer_chars)
            if self.id_field is None:
                problem_id = f"{id_prefix}{index}"
            else:
                problem_id = _problem_id(path, where, _field(path, where, row, self.id_field), self.id_field)
            if problem_id in first_seen:
                raise TaskInputError(f"{path}: {where}: duplicate id {problem_id!r} (first at {first_seen[problem_id]})")
            first_seen[problem_id] = where
            self._questions[problem_id] = question
            problems.append(Problem(problem_id, self.prompt_template.format(question=question), answer))
        return problems, columns

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
