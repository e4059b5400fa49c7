"""Reproduce and survive: real tiny rounds through DVC and the Prefect flow.

- reproduce: after two rounds, ``dvc repro -f -s`` of each stage of round 1 rebuilds identical bytes;
- survive: stage processes killed with SIGKILL at seeded random moments (at least 20 kills), the
  flow rerun after each failure, end with every round byte-identical to an undisturbed run and
  ``dvc status`` clean; every output found on disk at any moment in between is complete;
- resume: a flow started after a stop mid-round runs only from the first stage DVC reports as changed.

The stage code is this checkout's (PYTHONPATH), the model the tiny one of tests/conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from rlint.stage_graph import ROUND_STAGES
from tests.conftest import REPO, make_workspace

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent)
OUTPUTS = ("data", "checkpoints")  # metrics hold timings (tokens_per_second), so they are not compared byte for byte
ENV = {"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}


def dvc(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ws, capture_output=True, text=True, env={**ENV, "HOME": str(ws)})


def hashes(ws: Path) -> dict[str, str]:
    """sha256 of every file under the outputs, hidden ones included."""
    return {str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
            for top in OUTPUTS for p in sorted((ws / top).rglob("*")) if p.is_file()}


def new_workspace(path: Path, model: Path, rounds: int = 2) -> Path:
    ws = make_workspace(path, {"bootstrap": {"model_path": str(model), "eval_problems": 4},
                               "rollout": {"prompts_per_round": 3, "samples_per_prompt": 3}, "evaluate": {"problems": 4},
                               "sampling": {"max_new_tokens": 24}}, rounds=rounds)
    assert dvc(ws, "init", "--no-scm", "-q").returncode == 0
    return ws


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_checkpoint) -> tuple[Path, dict[str, str]]:
    ws = new_workspace(tmp_path_factory.mktemp("reference") / "ws", tiny_checkpoint)
    result = dvc(ws, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return ws, hashes(ws)


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_forced_rerun_of_each_stage_rebuilds_identical_bytes(reference):
    ws, expected = reference
    assert any(name.endswith("model.safetensors") for name in expected) and any("rollouts" in name for name in expected)
    for stage in ROUND_STAGES:
        result = dvc(ws, "repro", "-f", "-s", f"{stage}@r1")
        assert result.returncode == 0 and "Running stage" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
        now = hashes(ws)
        changed = sorted(name for name in set(now) | set(expected) if now.get(name) != expected.get(name))
        assert not changed, f"dvc repro -f -s {stage}@r1 changed {changed}"
    status = dvc(ws, "status")
    assert "up to date" in status.stdout, status.stdout
    print(f"\nreproduce: {len(ROUND_STAGES)} stages of round 1 forced, {len(expected)} output files byte-identical")


class Killer(threading.Thread):
    """SIGKILLs ``rlint`` stage processes of one workspace after seeded random delays, until ``target`` kills."""

    def __init__(self, ws: Path, target: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.ws, self.target, self.rng = str(ws), target, random.Random(seed)
        self.kills: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        # kills left per stage (1 to 3, drawn on first sight): three kills exhaust the flow's two
        # retries and fail the run, so both Prefect's retry and a rerun of the flow are exercised
        self.budget: dict[str, int] = {}

    def stage_processes(self):
        for proc in psutil.process_iter(["pid", "cmdline", "cwd", "create_time"]):
            cmd = proc.info["cmdline"] or []
            if proc.info["cwd"] == self.ws and len(cmd) > 2 and cmd[1].endswith("/rlint") and cmd[2] in ("bootstrap", *ROUND_STAGES):
                yield proc

    def run(self) -> None:
        seen: set[int] = set()
        while not self.stop.is_set() and len(self.kills) < self.target:
            for proc in self.stage_processes():
                if proc.pid in seen:
                    continue
                seen.add(proc.pid)
                cmd = proc.info["cmdline"]
                label = cmd[2] + (f"@r{cmd[4]}" if len(cmd) > 4 else "")
                budget = self.budget.setdefault(label, self.rng.choice([1, 2, 3]))
                delay = self.rng.uniform(0.2, 5.0)  # a stage process of the tiny run lives 5-15 s (imports included): most kills land
                if budget == 0:
                    break
                deadline = proc.info["create_time"] + delay
                while time.time() < deadline and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    time.sleep(0.02)
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    proc.send_signal(signal.SIGKILL)
                    self.kills.append((label, round(delay, 2)))
                    self.budget[label] -= 1
                    self.check_outputs()
                break
            time.sleep(0.05)

    def check_outputs(self) -> None:
        """Whatever output exists right after a kill is complete: readable Parquet, loadable model directory."""
        from rlint.checkpoints import verify_checkpoint
        from rlint.data import DataError, read_table

        ws = Path(self.ws)
        time.sleep(0.1)
        for part in (ws / "data").rglob("part-0.parquet"):
            dataset, round_dir = part.parent.parent.name, part.parent.name
            try:
                read_table(ws, dataset, int(round_dir.split("=")[1]))
            except DataError as err:
                if part.exists():  # DVC may remove a stage's old outputs while we read
                    self.errors.append(str(err))
        for model in (ws / "checkpoints").glob("round=*"):
            try:
                verify_checkpoint(model)
            except Exception as err:  # noqa: BLE001
                if model.exists():
                    self.errors.append(f"{model}: {err}")


def test_sigkilled_stages_and_reruns_leave_every_round_intact(reference, harness, tmp_path, tiny_checkpoint, monkeypatch):
    from flows.rounds import run_rounds

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    _, expected = reference
    ws = new_workspace(tmp_path / "ws", tiny_checkpoint)
    killer = Killer(ws, target=20, seed=20240)
    killer.start()
    runs, campaigns, started = 0, 1, time.monotonic()
    while True:
        runs += 1
        # fresh stage processes, the killer's targets: through the stage host an `rlint` process is a light client that lives
        # for the stage's work only, and most seeded delays would miss it (tests/test_stage_host.py kills clients)
        state = run_rounds(root=str(ws), return_state=True, stage_host="off")
        if state.is_completed() and not killer.is_alive():
            break
        if state.is_completed():  # all rounds done before the killer reached its target: a fresh campaign, same workspace
            for path in (ws / "data", ws / "checkpoints" / "round=1", ws / "checkpoints" / "round=2"):
                shutil.rmtree(path)
            killer.budget.clear()
            campaigns += 1
        assert runs < 40, f"no end after {runs} flow runs, {len(killer.kills)} kills"
    killer.stop.set()
    killer.join(5)
    by_stage: dict[str, int] = {}
    for label, _ in killer.kills:
        by_stage[label.split("@")[0]] = by_stage.get(label.split("@")[0], 0) + 1
    failed_runs = runs - campaigns
    print(f"\nfault test: {len(killer.kills)} SIGKILLs {by_stage}, {runs} flow runs ({failed_runs} failed and rerun, "
          f"{campaigns} campaign(s) from scratch), {time.monotonic() - started:.0f} s")
    print("kills (stage, seconds after start):", killer.kills)
    assert len(killer.kills) >= 20 and len(by_stage) >= 5
    assert not killer.errors, killer.errors
    now = hashes(ws)
    assert now == expected, sorted(name for name in set(now) | set(expected) if now.get(name) != expected.get(name))
    status = dvc(ws, "status")
    assert "up to date" in status.stdout, status.stdout
    print(f"rounds intact: 2 of 2, {len(now)} output files byte-identical to the undisturbed run; dvc status clean")


def test_a_stopped_flow_resumes_at_the_first_stage_dvc_reports_changed(harness, tmp_path, tiny_checkpoint, monkeypatch):
    from flows.rounds import run_rounds

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    ws = new_workspace(tmp_path / "ws", tiny_checkpoint, rounds=1)
    inputs = [f"input@{key}" for key in yaml.safe_load((ws / "params.yaml").read_text())["inputs"]]  # the model folder's record first
    assert inputs == ["input@bootstrap.model_path"]
    for target in (*inputs, "bootstrap", "archive_base", "rollout@r1", "mine@r1", "correct@r1"):  # stopped after correct
        assert dvc(ws, "repro", "-s", target).returncode == 0
    done = {p: p.stat().st_mtime_ns for top in OUTPUTS for p in (ws / top).rglob("*") if p.is_file()}
    status = json.loads(dvc(ws, "status", "--json").stdout)
    assert "archive@r1" in status and "rollout@r1" not in status and "correct@r1" not in status
    state = run_rounds(root=str(ws), return_state=True)
    assert state.is_completed()
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in done.items()), "a stage that was up to date ran again"
    assert (ws / "checkpoints" / "round=1" / "model.safetensors").is_file()
    archive = ws / "data" / "archive" / "round=1" / "part-0.parquet"
    assert archive.stat().st_mtime_ns > max(done.values())  # ... and the first changed stage onwards did
    assert "up to date" in dvc(ws, "status").stdout
