"""What every task gives the pipeline: problems, an outcome verifier, a step rule.

A task is the only place that knows what a problem looks like. The pipeline sees prompts,
reference answers, a reward function ``(completion, answer) -> 1.0 | 0.0 | None`` (None: cannot
be scored) and a step delimiter. Tasks with ground-truth step checks (the embedded arithmetic
task) also give ``first_error_step``; the method never calls it, only evaluation and the
``oracle`` mode do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Problem:
    """One problem: ``prompt`` is the exact text the policy continues."""

    problem_id: str
    prompt: str
    answer: str


class Task(Protocol):
    name: str
    step_delimiter: str
    merge_empty_steps: bool  # blank steps join the step before them (rlint/steps.py)
    has_step_checker: bool

    def problems(self, split: str, start: int, count: int) -> list[Problem]:
        """Problems ``start .. start+count-1`` of ``split`` ("train" or "heldout"), deterministic."""
        ...

    def reward(self, completion: str, answer: str) -> float | None:
        """Outcome verifier: 1.0 right, 0.0 wrong, None when the completion cannot be scored."""
        ...

    def first_error_step(self, problem: Problem, completion: str) -> int | None:
        """Ground truth: 1-based index of the first wrong step, None when every step is right."""
        ...

    def answer_text(self, answer: str) -> str:
        """How a completion states ``answer`` after its steps (scored by the ``info_gain`` estimator)."""
        ...

    def well_formed(self, completion: str) -> bool:
        """Format gate of the supervised loss: the completion has the task's structure (correctness aside)."""
        ...


class TaskInputError(ValueError):
    """A dataset or task setting is unusable; the message names the file, row or field."""


# -- repair prompt ---------------------------------------------------------------------------
DEFAULT_REPAIR_TEMPLATE = (
    "Here is a problem and a wrong solution. Correct the solution with as few changes as possible, "
    "keeping every right step as it is.\n\nProblem:\n{question}\n\nWrong solution:\n{attempt}\n\nCorrected solution:\n"
)


def check_repair_template(template: str) -> None:
    """Refuse a ``task.repair_template`` without ``{attempt}`` or with placeholders other than ``{question}`` and ``{attempt}``.

    >>> check_repair_template("{question}\\n{attempt}\\nFixed:\\n")
    >>> check_repair_template("{question}")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    TaskInputError: task.repair_template='{question}': must contain {attempt}
    """
    if "{attempt}" not in template:
        raise TaskInputError(f"task.repair_template={template!r}: must contain {{attempt}}")
    try:
        template.format(question="", attempt="")
    except (KeyError, IndexError, ValueError) as err:
        raise TaskInputError(f"task.repair_template={template!r}: use only {{question}} and {{attempt}} ({err!r})") from None
