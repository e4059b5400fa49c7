"""The arithmetic of a chain: a start value and operations applied left to right, and its prompt text.

Pure functions of ``(start, ops)``; the task (rlint/tasks/arithmetic.py) draws chains and checks
completions with them.
"""

from __future__ import annotations

import math

from rlint.tasks.base import TaskInputError

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}  # operator -> the step it writes


def multipliers(operand_max: int, modulus: int | None) -> list[int]:
    """Multiplication operands: ``1..operand_max``, or with a modulus those in ``2..operand_max`` coprime to it.

    >>> multipliers(9, 100), multipliers(9, None)[:3]
    ([3, 7, 9], [1, 2, 3])
    """
    if modulus is None:
        return list(range(1, operand_max + 1))
    return [b for b in range(2, operand_max + 1) if math.gcd(b, modulus) == 1]


def apply(op: str, value: int, operand: int, modulus: int | None = None) -> int:
    """One step's result, reduced modulo ``modulus`` when there is one.

    >>> apply("*", 57, 7), apply("*", 57, 7, 100), apply("-", 3, 5, 100)
    (399, 99, 98)
    """
    result = OPS[op](value, operand)
    return result if modulus is None else result % modulus


def solve(start: int, ops: list[tuple[str, int]], modulus: int | None = None) -> list[str]:
    """The worked solution as lines (without newlines): one per operation, then ``A:<answer>``.

    >>> solve(57, [("*", 7), ("+", 3)], 100)
    ['57*7=99', '99+3=2', 'A:2']
    """
    lines, value = [], start
    for op, operand in ops:
        result = apply(op, value, operand, modulus)
        lines.append(f"{value}{op}{operand}={result}")
        value = result
    lines.append(f"A:{value}")
    return lines


def format_prompt(start: int, ops: list[tuple[str, int]]) -> str:
    return "Q:" + ",".join([str(start)] + [f"{op}{operand}" for op, operand in ops]) + "\n"


def parse_prompt(prompt: str) -> tuple[int, list[tuple[str, int]]]:
    body = prompt.strip()
    if not body.startswith("Q:"):
        raise TaskInputError(f"arithmetic prompt {prompt!r} does not start with 'Q:'")
    start, *rest = body[2:].split(",")
    return int(start), [(item[0], int(item[1:])) for item in rest]
