"""The rounds flow streams a stage's output line by line as it is written (live progress in Prefect's log)."""

import os
import sys
import time

from flows.rounds import stream_command

CHILD = "import sys, time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('oops', file=sys.stderr, flush=True)\nsys.exit(3)\n"


def test_lines_arrive_while_the_command_runs(tmp_path):
    seen = []
    started = time.monotonic()
    code, output = stream_command([sys.executable, "-c", CHILD], str(tmp_path), dict(os.environ), lambda line: seen.append((line, time.monotonic())))
    ended = time.monotonic()
    assert code == 3 and output == "first\noops\n"
    assert [line for line, _ in seen] == ["first", "oops"]  # stderr too, in order
    assert seen[0][1] - started < ended - started - 1.0  # the first line was handed on before the command ended
