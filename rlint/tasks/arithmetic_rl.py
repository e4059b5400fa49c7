"""The embedded arithmetic task plus what RL credit needs: the answer text and a format check.

Kept apart from rlint/tasks/arithmetic.py because that file is a dependency of the bootstrap
stage (its hash is in dvc.lock): editing it would make the committed base policy look stale.
Every method of :class:`ArithmeticTask` is inherited unchanged.
"""

from __future__ import annotations

import re

from rlint.tasks.arithmetic import ArithmeticTask

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
