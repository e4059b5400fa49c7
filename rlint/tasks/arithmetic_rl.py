"""The embedded arithmetic task plus what RL credit needs: the answer text and a format check.

Kept apart from rlint/tasks/arithmetic.py because that file is a dependency of the bootstrap
stage (its hash is in dvc.lock): editing it would make the committed base policy look stale.
Every method of :class:`ArithmeticTask` is inherited unchanged.
"""

from __future__ import annotations

import random
import re

from rlint.tasks.arithmetic import _OPS, ArithmeticTask, parse_prompt, solve
from rlint.tasks.base import Problem

# the line between the failed attempt and its repair: two characters of the task's own alphabet
# (rlint/tasks/arithmetic.py), so the committed tokenizer and base checkpoint stay as they are
REPAIR_MARKER = "::\n"

# one or more "a<op>b=c" lines, then the answer line, then at most a final newline
_WELL_FORMED = re.compile(r"(?:\d{1,12}[+\-*]\d{1,12}=-?\d{1,12}\n)+A:-?\d{1,12}\n?")


class ArithmeticRLTask(ArithmeticTask):
    """:class:`ArithmeticTask` with :meth:`answer_text`, :meth:`well_formed` and :meth:`repair_prompt`."""

    repair_chat = False  # the embedded tokenizer has no chat template

    def repair_prompt(self, problem_id: str, prompt: str, attempt: str) -> str:
        """The compact repair format: the problem, the failed attempt, the marker; the repair follows.

        >>> ArithmeticRLTask().repair_prompt("p", "Q:3,+4\\n", "3+4=8\\nA:8\\n")
        'Q:3,+4\\n3+4=8\\nA:8\\n::\\n'
        """
        return prompt + attempt + ("" if attempt.endswith("\n") or not attempt else "\n") + REPAIR_MARKER

    def wrong_attempt(self, problem: Problem, rng: random.Random) -> str:
        """A failed attempt of the kinds the policy writes: one wrong line, then faithful steps from it.

        The wrong line, at a step drawn by ``rng``, is one of: a result off by a little (1-3 or
        10); the result of another operator; a correct line followed by a wrong copy of its
        value at the start of the next line (the next result is computed from the copy). Every
        value stays in ``0..value_max``; the final answer is wrong.

        >>> task = ArithmeticRLTask()
        >>> attempt = task.wrong_attempt(Problem("x", "Q:3,+4,*2\\n", "14"), random.Random(3))
        >>> attempt, task.reward(attempt, "14")
        ('3+4=7\\n6*2=12\\nA:12\\n', 0.0)
        """
        start, ops = parse_prompt(problem.prompt)
        value_max = self.config.value_max
        for _ in range(100):
            at = rng.randrange(len(ops))
            *head, value_line = solve(start, ops[:at])
            value = int(value_line[2:])
            op, operand = ops[at]
            right = _OPS[op](value, operand)
            kind = rng.choice(("off", "operator", "copy") if at + 1 < len(ops) else ("off", "operator"))
            if kind == "off":
                wrong = right + rng.choice((-3, -2, -1, 1, 2, 3, -10, 10))
            elif kind == "operator":
                wrong = _OPS[rng.choice([o for o in "+-*" if o != op])](value, operand)
            else:  # the line is right; the next one starts from a wrong copy of its value
                copied = right + rng.choice((-3, -2, -1, 1, 2, 3, -10, 10))
                next_op, next_operand = ops[at + 1]
                result = _OPS[next_op](copied, next_operand)
                if not (0 <= copied <= value_max and 0 <= result <= value_max):
                    continue
                lines = head + [f"{value}{op}{operand}={right}", f"{copied}{next_op}{next_operand}={result}"] + solve(result, ops[at + 2:])
                return "".join(line + "\n" for line in lines)
            if wrong == right or not 0 <= wrong <= value_max:
                continue
            # every operation is one-to-one on integers, so a wrong value gives a wrong answer
            lines = head + [f"{value}{op}{operand}={wrong}"] + solve(wrong, ops[at + 1:])
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

        >>> ArithmeticRLTask().answer_text("52")
        'A:52\\n'
        """
        return f"A:{answer}\n"

    def well_formed(self, completion: str) -> bool:
        """Format gate: one ``a<op>b=c`` line per step, then ``A:<int>``, nothing else (values unchecked).

        >>> task = ArithmeticRLTask()
        >>> task.well_formed("3+4=7\\n7*2=15\\nA:15\\n"), task.well_formed("3+4=7\\n9333=96\\nA:96\\n"), task.well_formed("A:7\\n")
        (True, False, False)
        """
        return _WELL_FORMED.fullmatch(completion) is not None
