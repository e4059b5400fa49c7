"""The embedded task: multi-step arithmetic chains whose every step can be checked.

A problem is a start value and a chain of operations applied left to right::

    prompt      Q:12,+7,*3,-5\\n
    solution    12+7=19\\n19*3=57\\n57-5=52\\nA:52\\n

One step per line; the last line gives the final answer. Every intermediate value stays in
``[0, value_max]`` (operations that would leave it are re-drawn), so numbers stay short. With
``modulus`` set, every written value is reduced modulo it instead (``57*7=99`` modulo 100) and
nothing is re-drawn; multiplication operands are then units modulo ``modulus`` (coprime to it),
so every operation is one-to-one and a wrong line can never be silently undone by a later one.
Problems are generated from ``(seed, split, index)`` alone, and the split of a problem is
decided by a hash of its text, so train and held-out are disjoint by construction. The chain
arithmetic itself (apply, solve, the prompt text) is in rlint/tasks/chains.py.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from rlint.tasks.base import Problem, TaskInputError
from rlint.tasks.chains import OPS, apply, format_prompt, multipliers, parse_prompt, solve

_ANSWER_LINE = re.compile(r"^A:(-?\d{1,12})$")
# one or more "a<op>b=c" lines, then the answer line, then at most a final newline
_WELL_FORMED = re.compile(r"(?:\d{1,12}[+\-*]\d{1,12}=-?\d{1,12}\n)+A:-?\d{1,12}\n?")
# the line between a failed attempt and its repair (mine.strategy: repair): two characters of the
# task's own alphabet, so the tokenizer and the committed base checkpoint stay as they are
REPAIR_MARKER = "::\n"

# Every character the task writes; the embedded tokenizer is built from this.
ALPHABET = "0123456789+-*=,:QA\n"


@dataclass(frozen=True)
class ArithmeticConfig:
    """Difficulty of the embedded task."""

    seed: int = 0
    min_steps: int = 3  # operations per problem, inclusive range
    max_steps: int = 5
    operand_max: int = 9  # operands are drawn from 1..operand_max
    value_max: int = 99  # every intermediate value stays in 0..value_max
    operators: str = "+-*"
    heldout_share: float = 0.2  # share of the problem space that belongs to "heldout"
    modulus: int | None = None  # every written value is reduced modulo this (value_max unused); None: values stay in 0..value_max

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            raise TaskInputError(f"task.min_steps={self.min_steps} and task.max_steps={self.max_steps}: need 1 <= min_steps <= max_steps")
        if self.operand_max < 1 or self.value_max < self.operand_max:
            raise TaskInputError(f"task.operand_max={self.operand_max}, task.value_max={self.value_max}: need 1 <= operand_max <= value_max")
        bad = set(self.operators) - set(OPS)
        if not self.operators or bad:
            raise TaskInputError(f"task.operators={self.operators!r}: use a non-empty subset of '+-*'")
        if not 0.0 < self.heldout_share < 1.0:
            raise TaskInputError(f"task.heldout_share={self.heldout_share}: must be in (0, 1)")
        if self.modulus is not None:
            if not 2 <= self.modulus <= MAX_MODULUS:
                raise TaskInputError(f"task.modulus={self.modulus}: must be in 2..{MAX_MODULUS} (or null: no modulus)")
            if "*" in self.operators and not multipliers(self.operand_max, self.modulus):
                raise TaskInputError(f"task.modulus={self.modulus}, task.operand_max={self.operand_max}: no multiplier in 2..operand_max is "
                                     "coprime to the modulus (multiplication would not be one-to-one): raise operand_max or change the modulus")

    @property
    def value_limit(self) -> int:
        """The largest value a line can write."""
        return self.value_max if self.modulus is None else self.modulus - 1

    def line_chars(self) -> int:
        """Characters of the longest step line, newline included (``a<op>b=c\\n``)."""
        digits = len(str(self.value_limit))
        return 2 * digits + len(str(self.operand_max)) + 3

    def completion_chars(self) -> int:
        """Characters of the longest reference solution: ``max_steps`` lines and the answer line."""
        return self.max_steps * self.line_chars() + len(str(self.value_limit)) + 3

    def prompt_chars(self) -> int:
        """Characters of the longest prompt: ``Q:<start>,<op><operand>,...\\n``."""
        return 3 + len(str(self.value_limit)) + self.max_steps * (2 + len(str(self.operand_max)))


MAX_MODULUS = 10**6


class ArithmeticTask:
    """Synthetic chains with an outcome verifier and a ground-truth step checker."""

    name = "arithmetic"
    step_delimiter = "\n"
    merge_empty_steps = False  # blank steps are steps (task.merge_empty_steps turns it on)
    has_step_checker = True
    repair_chat = chat_template = False  # the embedded tokenizer has no chat template

    def __init__(self, config: ArithmeticConfig | None = None) -> None:
        self.config = config or ArithmeticConfig()
        self._multipliers = multipliers(self.config.operand_max, self.config.modulus)

    def _solve(self, start: int, ops: list[tuple[str, int]]) -> list[str]:
        return solve(start, ops, self.config.modulus)

    def _off(self, right: int, rng: random.Random) -> int:
        """A value off from ``right`` by a little (1-3 or 10), reduced modulo the modulus if any."""
        wrong = right + rng.choice((-3, -2, -1, 1, 2, 3, -10, 10))
        return wrong if self.config.modulus is None else wrong % self.config.modulus

    # -- problems ---------------------------------------------------------------------------
    def _draw(self, rng: random.Random) -> tuple[int, list[tuple[str, int]]]:
        cfg = self.config
        n_steps = rng.randint(cfg.min_steps, cfg.max_steps)
        value = rng.randint(0, cfg.value_limit)
        start, ops = value, []
        while len(ops) < n_steps:
            op = rng.choice(cfg.operators)
            operand = rng.choice(self._multipliers) if op == "*" and cfg.modulus is not None else rng.randint(1, cfg.operand_max)
            result = apply(op, value, operand, cfg.modulus)
            if 0 <= result <= cfg.value_limit:
                ops.append((op, operand))
                value = result
        return start, ops

    def split_of(self, prompt: str) -> str:
        digest = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)
        return "heldout" if digest / 0xFFFFFFFF < self.config.heldout_share else "train"

    def problems(self, split: str, start: int, count: int) -> list[Problem]:
        """Problems ``start .. start+count-1`` of ``split``; the same arguments give the same list."""
        if split not in ("train", "heldout"):
            raise TaskInputError(f"split={split!r}: use 'train' or 'heldout'")
        rng = random.Random(f"rlint-arithmetic/{self.config.seed}/{split}")
        out: list[Problem] = []
        index = 0
        while len(out) < count:
            first, ops = self._draw(rng)
            prompt = format_prompt(first, ops)
            if self.split_of(prompt) != split:
                continue
            if index >= start:
                answer = self._solve(first, ops)[-1][2:]
                out.append(Problem(problem_id=f"{split}-{index:06d}", prompt=prompt, answer=answer))
            index += 1
        return out

    def solution(self, problem: Problem) -> str:
        """The reference worked solution, ending with a newline."""
        return "\n".join(self._solve(*parse_prompt(problem.prompt))) + "\n"

    def faithful_example(self, problem: Problem, rng: random.Random) -> tuple[str, str]:
        """A worked solution that goes on faithfully from one wrong line: ``(context, target)``.

        One step, drawn by ``rng``, gets a wrong result (off by 1-3 or 10, kept in
        ``0..value_max``, or reduced modulo ``modulus``); every later line computes from the value actually written, so the
        final answer is wrong too. ``context`` is the completion up to and including the wrong
        line, ``target`` the rest. A model trained on ``target`` only learns to continue from
        what it wrote rather than from the reference chain, so its errors propagate to the
        answer instead of cancelling, which is what outcome-only mining needs to see them.

        >>> task = ArithmeticTask()
        >>> context, target = task.faithful_example(Problem("x", "Q:3,+4,*2\\n", "14"), random.Random(1))
        >>> context, target
        ('3+4=5\\n', '5*2=10\\nA:10\\n')
        """
        start, ops = parse_prompt(problem.prompt)
        wrong_at = rng.randrange(len(ops))
        *head, answer_so_far = self._solve(start, ops[:wrong_at])  # the reference lines before the wrong step
        value = int(answer_so_far[2:])
        op, operand = ops[wrong_at]
        right = wrong = apply(op, value, operand, self.config.modulus)
        while wrong == right or not 0 <= wrong <= self.config.value_limit:
            wrong = self._off(right, rng)
        context = head + [f"{value}{op}{operand}={wrong}"]
        return "".join(line + "\n" for line in context), "".join(line + "\n" for line in self._solve(wrong, ops[wrong_at + 1 :]))

    # -- verifiers --------------------------------------------------------------------------
    def reward(self, completion: str, answer: str) -> float | None:
        """1.0 if the first ``A:<int>`` line equals ``answer``, 0.0 if it differs, None if absent.

        >>> ArithmeticTask().reward("3+4=7\\nA:7\\n", "7")
        1.0
        >>> ArithmeticTask().reward("3+4=8\\nA:8\\n", "7")
        0.0
        >>> ArithmeticTask().reward("3+4=7\\n", "7") is None
        True
        """
        for line in completion.split("\n"):
            match = _ANSWER_LINE.match(line.strip())
            if match:
                return 1.0 if int(match.group(1)) == int(answer) else 0.0
        return None

    def first_error_step(self, problem: Problem, completion: str) -> int | None:
        """1-based index of the first line that differs from the reference solution.

        Steps are the lines of the completion; a missing line counts as wrong at its position.
        Returns None when every reference line is matched.

        >>> task = ArithmeticTask()
        >>> p = Problem("x", "Q:3,+4,*2\\n", "14")
        >>> task.first_error_step(p, "3+4=7\\n7*2=14\\nA:14\\n") is None
        True
        >>> task.first_error_step(p, "3+4=7\\n7*2=15\\nA:15\\n")
        2
        """
        reference = self._solve(*parse_prompt(problem.prompt))
        lines = completion.split("\n")
        for index, expected in enumerate(reference):
            if index >= len(lines) or lines[index].strip() != expected:
                return index + 1
        return None

    def repair_prompt(self, problem_id: str, prompt: str, attempt: str) -> str:
        """The compact repair format: the problem, the failed attempt, the marker; the repair follows.

        >>> ArithmeticTask().repair_prompt("p", "Q:3,+4\\n", "3+4=8\\nA:8\\n")
        'Q:3,+4\\n3+4=8\\nA:8\\n::\\n'
        """
        return prompt + attempt + ("" if attempt.endswith("\n") or not attempt else "\n") + REPAIR_MARKER

    def wrong_attempt(self, problem: Problem, rng: random.Random) -> str:
        """A failed attempt of the kinds the policy writes: one wrong line, then faithful steps from it.

        The wrong line, at a step drawn by ``rng``, is one of: a result off by a little (1-3 or
        10); the result of another operator; a correct line followed by a wrong copy of its
        value at the start of the next line (the next result is computed from the copy). Every
        value stays in ``0..value_max`` (reduced modulo ``modulus`` if set); the final answer is wrong.

        >>> task = ArithmeticTask()
        >>> attempt = task.wrong_attempt(Problem("x", "Q:3,+4,*2\\n", "14"), random.Random(3))
        >>> attempt, task.reward(attempt, "14")
        ('3+4=7\\n6*2=12\\nA:12\\n', 0.0)
        """
        start, ops = parse_prompt(problem.prompt)
        value_max, modulus = self.config.value_limit, self.config.modulus
        for _ in range(100):
            at = rng.randrange(len(ops))
            *head, value_line = self._solve(start, ops[:at])
            value = int(value_line[2:])
            op, operand = ops[at]
            right = apply(op, value, operand, modulus)
            kind = rng.choice(("off", "operator", "copy") if at + 1 < len(ops) else ("off", "operator"))
            if kind == "off":
                wrong = self._off(right, rng)
            elif kind == "operator":
                wrong = apply(rng.choice([o for o in "+-*" if o != op]), value, operand, modulus)
            else:  # the line is right; the next one starts from a wrong copy of its value
                copied = self._off(right, rng)
                next_op, next_operand = ops[at + 1]
                result = apply(next_op, copied, next_operand, modulus)
                if not (0 <= copied <= value_max and 0 <= result <= value_max):
                    continue
                lines = head + [f"{value}{op}{operand}={right}", f"{copied}{next_op}{next_operand}={result}"] + self._solve(result, ops[at + 2:])
                return "".join(line + "\n" for line in lines)
            if wrong == right or not 0 <= wrong <= value_max:
                continue
            # every operation is one-to-one on integers, so a wrong value gives a wrong answer
            lines = head + [f"{value}{op}{operand}={wrong}"] + self._solve(wrong, ops[at + 1:])
            return "".join(line + "\n" for line in lines)
        return ""  # no wrong line fits this problem's range (rare): the caller skips it

    def repair_example(self, problem: Problem, rng: random.Random) -> tuple[str, str] | None:
        """A repair lesson ``(context, target)``: the repair prompt of a wrong attempt, and the reference
        solution, which is that attempt minimally edited (the operators and operands stay; the wrong
        value and what was computed from it change). None when no wrong attempt fits the problem."""
        attempt = self.wrong_attempt(problem, rng)
        if not attempt:
            return None
        return self.repair_prompt(problem.problem_id, problem.prompt, attempt), self.solution(problem)

    def answer_text(self, answer: str) -> str:
        """How the final answer is written after the steps (what ``info_gain`` scores).

        >>> ArithmeticTask().answer_text("52")
        'A:52\\n'
        """
        return f"A:{answer}\n"

    def well_formed(self, completion: str) -> bool:
        """Format gate: one ``a<op>b=c`` line per step, then ``A:<int>``, nothing else (values unchecked).

        >>> task = ArithmeticTask()
        >>> task.well_formed("3+4=7\\n7*2=15\\nA:15\\n"), task.well_formed("3+4=7\\n9333=96\\nA:96\\n"), task.well_formed("A:7\\n")
        (True, False, False)
        """
        return _WELL_FORMED.fullmatch(completion) is not None
