"""The flow's sampling engines: one vLLM server per policy checkpoint, shared by the stages that sample from it.

A round's stages in flow order, with the checkpoint each samples from::

    rollout@rk, mine@rk, correct@rk        checkpoint k-1
    archive@rk, credit@rk, optimize@rk     none
    evaluate@rk                            checkpoint k  (and so do rollout, mine, correct of round k+1)

:func:`engine_groups` cuts that sequence into runs of consecutive stages on the same checkpoint.
For each run with stages DVC will actually rerun, the flow starts one server for that checkpoint
(rlint/engine/served.py), passes its address to the stages' environment, and stops it after the
run's last stage, also when a stage fails. Each stage is still its own ``dvc repro`` command,
with the bytes it would write alone (tests/engine/test_served.py). So a round pays one engine
start where it paid four, and the trainer never shares the accelerator with a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SAMPLES_FROM_PREVIOUS = ("rollout", "mine", "correct")  # stages of round k that sample from checkpoint k-1
SAMPLES_FROM_OWN = ("evaluate",)  # ... from checkpoint k


def engine_groups(round_ids: list[int], stages: tuple[str, ...]) -> list[tuple[int | None, list[str]]]:
    """``(checkpoint round or None, [targets])`` runs, in order, covering every stage of every round once.

    >>> engine_groups([1, 2], ("rollout", "mine", "correct", "archive", "credit", "optimize", "evaluate"))[:3]
    [(0, ['rollout@r1', 'mine@r1', 'correct@r1']), (None, ['archive@r1', 'credit@r1', 'optimize@r1']), (1, ['evaluate@r1', 'rollout@r2', 'mine@r2', 'correct@r2'])]
    """
    groups: list[tuple[int | None, list[str]]] = []
    for round_id in round_ids:
        for stage in stages:
            checkpoint = round_id - 1 if stage in SAMPLES_FROM_PREVIOUS else round_id if stage in SAMPLES_FROM_OWN else None
            target = f"{stage}@r{round_id}"
            if groups and groups[-1][0] == checkpoint:
                groups[-1][1].append(target)
            else:
                groups.append((checkpoint, [target]))
    return groups


def sharing(shared_engine: str) -> bool:
    """``on``/``off``, or ``auto``: on where there is a GPU (an engine start there loads weights and captures CUDA graphs,
    30-120 s), off on a CPU, where scripts/bench_round.py measured the shared server slower than an engine per stage
    on the embedded model (bench/round/summary.json)."""
    if shared_engine not in ("auto", "on", "off"):
        raise ValueError(f"shared_engine={shared_engine!r}: use auto, on or off")
    if shared_engine == "auto":
        from rlint.engine import _on_gpu

        return _on_gpu()
    return shared_engine == "on"


def wants_server(root: str, params, checkpoint_round: int) -> bool:
    """A shared server pays off where the stages would each start vLLM on that checkpoint: the engine resolves to vLLM
    for it (``auto``: rlint.engine.engine_name), one replica."""
    from rlint.checkpoints import checkpoint_path
    from rlint.engine import EngineError, engine_name

    try:
        name = engine_name(params.sampling.engine, str(checkpoint_path(Path(root), checkpoint_round)))
    except EngineError:
        return False  # the stages refuse it themselves, as bad input
    return name == "vllm" and params.sampling.vllm.data_parallel_size == 1


def stale(root: str, targets: list[str]) -> bool:
    """Whether DVC would rerun any of ``targets`` (``dvc status``; a failure to tell counts as stale)."""
    done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", *targets], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    try:
        return done.returncode != 0 or bool(json.loads(done.stdout or "{}"))
    except json.JSONDecodeError:
        return True


def log_dir(root: str) -> Path:
    """``ROOT/.rlint``, where the flow's long-lived processes (engine servers, the stage host) write their logs."""
    logs = Path(root) / ".rlint"
    logs.mkdir(exist_ok=True)
    return logs


@contextlib.contextmanager
def shared_engine(root: str, checkpoint_round: int, params, port: int | None = None, emit=print, timings: list | None = None):
    """A server for ``checkpoints/round=<checkpoint_round>`` while the block runs; yields the stages' environment."""
    from rlint.checkpoints import checkpoint_path
    from rlint.engine.served import EngineServer

    server = EngineServer(checkpoint_path(Path(root), checkpoint_round), params.sampling.vllm, port=port,
                          log_path=log_dir(root) / f"engine-round={checkpoint_round}.log")
    emit(f"engine: one vLLM server for checkpoints/round={checkpoint_round} on port {server.port}, ready in {server.start_seconds:.1f}s")
    try:
        yield server.environment()
    finally:
        stopping = time.monotonic()
        server.stop()
        if timings is not None:
            timings.append({"server": checkpoint_round, "start": server.started_at, "start_seconds": server.start_seconds, "stop_seconds": time.monotonic() - stopping})
        emit(f"engine: server for checkpoints/round={checkpoint_round} stopped")
