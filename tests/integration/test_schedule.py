"""The served, scheduled campaign end to end: a real Prefect server on loopback, ``flows.campaign serve``
on an interval schedule, rounds appended by ``add_round`` until ``--max-rounds``, a concurrent flow
refused by the workspace lock, and DVC clean at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_faults import dvc, new_workspace

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, path: str, body: dict | None = None):
    request = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _start_server(port: int, env: dict, logs: Path) -> subprocess.Popen:
    """``prefect server start`` on loopback, its output in ``logs/server.log``."""
    return subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=(logs / "server.log").open("w"), stderr=subprocess.STDOUT)


def _wait_healthy(api: str) -> None:
    def healthy():
        try:
            return _api(api, "/health") is True
        except OSError:
            return False
    _wait(healthy, 180, "the Prefect server")


def test_served_campaign_appends_rounds_on_its_schedule(tmp_path, tiny_checkpoint):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api, "PYTHONPATH": str(REPO),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
           "PREFECT_RUNNER_POLL_FREQUENCY": "2", "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    ws = new_workspace(tmp_path / "ws", tiny_checkpoint, rounds=1)  # r1 listed, nothing run yet
    logs = tmp_path / "logs"
    logs.mkdir()
    server = _start_server(port, env, logs)
    serve = None
    try:
        _wait_healthy(api)
        serve = subprocess.Popen([sys.executable, "-m", "flows.campaign", "serve", "--root", str(ws), "--interval", "30", "--max-rounds", "2"],
                                 cwd=REPO, env=env, stdout=(logs / "serve.log").open("w"), stderr=subprocess.STDOUT)
        _wait(lambda: (ws / ".rlint-campaign.lock").exists() and "rlint-campaign flow" in (ws / ".rlint-campaign.lock").read_text(), 240,
              "the first scheduled run to take the workspace")
        # a second campaign on the same workspace, while the first runs: refused at once, nothing touched
        params_before = (ws / "params.yaml").read_text()
        second = subprocess.run([sys.executable, "-m", "flows.rounds", "--root", str(ws)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode != 0 and "another campaign is running in this workspace" in second.stdout + second.stderr
        assert (ws / "params.yaml").read_text() in (params_before, params_before + "  r2: {id: 2, prev: 1}\n")

        def runs(state: str) -> list[dict]:
            return _api(api, "/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": [state]}}}})
        _wait(lambda: (ws / "metrics" / "evaluate" / "round=2.json").exists() and len(runs("COMPLETED")) >= 2, 900,
              "two completed scheduled runs and round 2 evaluated")
        completed = runs("COMPLETED")
    finally:
        for proc in (serve, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    text = (ws / "params.yaml").read_text()
    assert text.rstrip().endswith("  r2: {id: 2, prev: 1}") and "r3" not in text  # appended by add_round, stopped at --max-rounds
    status = dvc(ws, "status")
    assert "up to date" in status.stdout, status.stdout
    assert all(r["deployment_id"] for r in completed)  # scheduled runs of the served deployment
    print(f"\nschedule: {len(completed)} completed scheduled runs; params.yaml rounds r1, r2 (r2 appended); second campaign refused")
