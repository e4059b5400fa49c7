"""Bounding what sympy may spend on an untrusted answer, in any thread.

Two bounds, one verdict:

1. **A cost model over the whole expression** (:func:`expression_cost`), computed on the parsed
   (unevaluated) sympy trees before anything compares them: the number of monomials a full
   expansion could produce (``(a+b+1)^{10}`` has C(12, 10) = 66; a product multiplies its
   factors', so ``(a+…+h+1)^{10}(a+…+i+1)^{10}`` has about 4e9) and the digits of the largest
   number evaluation could build (``9^{1000}``: 1,000 digits; ``1000!``: 2,568). Above
   :data:`MAX_TERMS` or :data:`MAX_DIGITS` the answer is not compared at all.
2. **A hard time limit that works off the main thread**: an answer whose cost is above the cheap
   limits (:data:`CHEAP_TERMS`, :data:`CHEAP_DIGITS`) is compared in a separate worker process
   (:class:`BoundedVerifier`), killed when it takes longer than :data:`HARD_TIMEOUT_S`.
   math-verify's own timeouts use ``signal.alarm``, which only works on the main thread; the
   worker's main thread has them too. Cheap answers (nearly all of them) are compared in-process:
   the worker adds about 1 ms per answer (0.7 ms for "42", 1.0 ms for "\\frac{3}{4}" vs "0.75"), and seconds to start once (the
   first costly answer of a process waits for it, outside the limit).

The verdict for an answer above either bound (too costly, or killed) is **None: unscorable**,
as for an answer that cannot be read; it is never compared, so it can never be "right".
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import sympy

log = logging.getLogger(__name__)

MAX_TERMS = 1_000  # monomials an expansion may produce; above: unscorable
MAX_DIGITS = 10_000  # digits of the largest number evaluation may build; above: unscorable
CHEAP_TERMS = 16  # at or below both cheap limits the comparison runs in-process: (x+1)^2, 3/4, 2\sqrt{2}, 1234
CHEAP_DIGITS = 30
HARD_TIMEOUT_S = 3.0  # a comparison in the worker is killed after this (math-verify's own limit there is 2 s)
STARTUP_TIMEOUT_S = 120.0  # the worker imports sympy and math-verify once: not charged to any answer
_INF = math.inf
_UNBOUNDED = (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.Derivative, sympy.MatrixBase)
_FACTORIALS = (sympy.factorial, sympy.factorial2, sympy.subfactorial, sympy.gamma, sympy.binomial)


def _log10(value: int) -> float:
    """Digits of an integer without printing it (str() of a huge int is slow, and refused past 4,300 digits)."""
    return math.log10(abs(value)) + 1 if value else 1.0  # math.log10 takes ints of any size


def _exponent_size(exponent: sympy.Basic) -> float:
    """An upper estimate of |exponent| for a numeric exponent; inf when it cannot be small."""
    if exponent.is_Integer:
        return float(abs(int(exponent))) if _log10(int(exponent)) < 300 else _INF
    if exponent.is_Rational:
        return _exponent_size(sympy.Integer(exponent.p))
    if exponent.is_Float:
        return abs(float(exponent))
    _, digits = expression_cost(exponent)
    return 10.0 ** digits if digits < 300 else _INF


def expression_cost(expr) -> tuple[float, float]:
    """``(terms, digits)``: monomials a full expansion of ``expr`` could have, and digits of the largest number it could build.

    Upper estimates over the whole tree (a product multiplies its factors' terms). inf: unbounded
    (sums, integrals, limits, matrices, a numeric exponent that is itself huge).

    >>> a, b, c = sympy.symbols("a b c")
    >>> expression_cost((a + b + 1) ** 10)[0]
    66
    >>> terms, _ = expression_cost(sympy.Mul((a + b + c + 1) ** 10, (a + b + 1) ** 10, evaluate=False)); terms
    18876
    >>> round(expression_cost(sympy.Pow(9, 1000, evaluate=False))[1])
    955
    """
    if not isinstance(expr, sympy.Basic):
        return 1, 1.0
    if isinstance(expr, _UNBOUNDED):
        return _INF, _INF
    if expr.is_Integer:
        return 1, _log10(int(expr))
    if expr.is_Rational:
        return 1, _log10(expr.p) + _log10(expr.q)
    if expr.is_Atom:
        return 1, 1.0
    if isinstance(expr, sympy.Pow):
        base_terms, base_digits = expression_cost(expr.base)
        exponent = expr.exp
        if exponent.free_symbols:  # 2^n: nothing to expand or evaluate
            exp_terms, exp_digits = expression_cost(exponent)
            return base_terms * exp_terms, max(base_digits, exp_digits)
        n = _exponent_size(exponent)
        if n == _INF:
            return _INF, _INF
        n = max(1, math.ceil(n))
        terms = math.comb(int(base_terms) + n - 1, n) if expr.base.free_symbols and base_terms < _INF and n < 10**6 else (
            _INF if expr.base.free_symbols else 1)
        if expr.base.is_Integer:
            digits = n * (_log10(int(expr.base)) - 1) + 1
        else:
            digits = base_digits * n
        return terms, digits
    if isinstance(expr, _FACTORIALS):
        costs = [expression_cost(arg) for arg in expr.args]
        n = _exponent_size(expr.args[0]) if not expr.args[0].free_symbols else 1
        digits = n * math.log10(max(n, 2)) + 1 if n < _INF else _INF
        return math.prod(t for t, _ in costs), max([digits] + [d for _, d in costs])
    costs = [expression_cost(arg) for arg in expr.args]
    if not costs:
        return 1, 1.0
    if isinstance(expr, sympy.Mul):
        return math.prod(t for t, _ in costs), sum(d for _, d in costs)
    return sum(t for t, _ in costs), max(d for _, d in costs) + 1


def combined_cost(*parsed_lists) -> tuple[float, float]:
    """The cost of comparing math-verify parse results: the sum of terms, the largest digits."""
    costs = [expression_cost(item) for parsed in parsed_lists for item in parsed]
    return sum(t for t, _ in costs), max((d for _, d in costs), default=1.0)


class BoundedVerifier:
    """One worker process (``python -m rlint.tasks.bounded``) that compares answers and is killed past a time limit.

    Thread-safe: calls are serialised, each with its own limit. A killed worker is restarted on the next call.
    """

    def __init__(self, timeout_s: float = HARD_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._buffer = b""

    def _readline(self, deadline: float) -> bytes | None:
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _start(self) -> bool:
        self._buffer = b""
        package_root = str(Path(__file__).resolve().parents[2])  # the worker imports this very rlint, however it was found
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self._proc = subprocess.Popen([sys.executable, "-m", "rlint.tasks.bounded"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path})
        if self._readline(time.monotonic() + STARTUP_TIMEOUT_S) != b"ready":
            log.warning("the bounded verifier worker did not start: costly answers score None")
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def reward(self, gold: str, candidate: str) -> float | None:
        """math-verify's verdict on two answer texts (1.0 / 0.0), or None when it takes longer than ``timeout_s``."""
        with self._lock:
            if (self._proc is None or self._proc.poll() is not None) and not self._start():
                return None
            self._proc.stdin.write(json.dumps({"gold": gold, "candidate": candidate}).encode() + b"\n")
            self._proc.stdin.flush()
            line = self._readline(time.monotonic() + self.timeout_s)
            if line is None:  # over the limit: kill it, whatever it is doing
                self.close()
                return None
            return json.loads(line)["reward"]


_VERIFIER = BoundedVerifier()
atexit.register(_VERIFIER.close)


def bounded_reward(gold: str, candidate: str) -> float | None:
    """Compare two answer texts in the worker process, within :data:`HARD_TIMEOUT_S`."""
    return _VERIFIER.reward(gold, candidate)


def _serve() -> None:
    """The worker: one JSON request a line on stdin, one JSON answer a line on stdout."""
    from rlint.tasks.math_answer import compare_texts

    compare_texts("1", "1")  # warm up math-verify's grammar before saying ready
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        out.write(json.dumps({"reward": compare_texts(request["gold"], request["candidate"])}).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
