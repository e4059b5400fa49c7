"""The flow's shared engine (flows/engine.py) end to end, on vLLM: a flow killed with SIGKILL while its server runs leaves
no server or engine process behind, and the next flow run completes with one server per policy checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rlint.engine.vllm import vllm_available
from tests.conftest import REPO, make_workspace
from tests.engine.test_vllm import vllm_checkpoint  # noqa: F401  (the fixture)
from tests.integration.test_faults import ENV, dvc

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (make install installs it)")]


def _servers() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if "rlint.engine.served" in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def _group(pgid: int) -> list[psutil.Process]:
    alive = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return alive


def _in(ws: Path) -> list[psutil.Process]:
    """Processes working in the workspace (dvc repro and the stages it runs)."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.cwd() == str(ws) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _vllm_workspace(tmp_path: Path, checkpoint: Path) -> tuple[Path, dict]:
    """A one-round DVC workspace sampling with vLLM from ``checkpoint``, and the environment a flow runs in there."""
    ws = make_workspace(tmp_path / "ws", {"bootstrap": {"model_path": str(checkpoint), "eval_problems": 4},
                                          "evaluate": {"problems": 4}, "sampling": {"engine": "vllm", "max_new_tokens": 24,
                                                                                    "vllm": {"gpu_memory_utilization": 0.05}}})
    assert dvc(ws, "init", "--no-scm", "-q").returncode == 0
    env = {**ENV, "HOME": str(ws), "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    return ws, env


def test_a_killed_flow_leaves_no_engine_and_the_next_run_shares_one_per_checkpoint(tmp_path, vllm_checkpoint):  # noqa: F811
    ws, env = _vllm_workspace(tmp_path, vllm_checkpoint)
    command = [sys.executable, "-m", "flows.rounds", "--root", str(ws), "--shared-engine", "on"]
    flow = subprocess.Popen(command, cwd=REPO, env=env, stdout=(tmp_path / "killed.log").open("w"), stderr=subprocess.STDOUT)
    try:
        server = _wait(lambda: [s for s in _servers() if str(ws) in " ".join(s.cmdline())], 600, "the flow's engine server")[0]
        pgid = server.pid  # started in its own session: its group holds vLLM's engine core too
        _wait(lambda: len(_group(pgid)) >= 2 or (ws / "data" / "rollouts").exists(), 300, "the engine core")
        flow.send_signal(signal.SIGKILL)
        flow.wait()
        _wait(lambda: not _group(pgid), 90, "the server's process group to end after the flow was killed")
        # stage processes the dead flow had started end on their own (their server is gone); DVC's lock goes with them
        _wait(lambda: not _in(ws), 300, "the killed flow's stage processes to end")
    finally:
        if flow.poll() is None:
            flow.kill()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    starts = [line for line in log.splitlines() if "engine: one vLLM server for" in line]
    assert len([s for s in starts if "checkpoints/round=0 " in s]) <= 1 and len([s for s in starts if "checkpoints/round=1 " in s]) == 1, starts
    assert "vLLM engine: the shared server" in log  # the stages sampled from it
    assert not _servers()
    status = dvc(ws, "status")
    assert "up to date" in status.stdout, status.stdout


def test_a_taken_port_fails_the_flow_in_one_line_before_any_stage_that_samples(tmp_path, vllm_checkpoint):  # noqa: F811
    import socket

    ws, env = _vllm_workspace(tmp_path, vllm_checkpoint)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "flows.rounds", "--root", str(ws), "--shared-engine", "on", "--engine-port", str(port)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=900)
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("flows.rounds: error:")]  # Prefect's own shutdown line may follow
    assert len(errors) == 1 and errors[0].startswith("flows.rounds: error: engine server for ") and f"port {port} on 127.0.0.1 is taken" in errors[0], errors
    assert (ws / "checkpoints" / "round=0").is_dir() and not (ws / "data" / "rollouts").exists()  # the bootstrap ran; no sampling stage did
