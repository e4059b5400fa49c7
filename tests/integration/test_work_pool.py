"""The rounds flow on a Prefect process work pool, as on a cluster: a real ``prefect server start`` on
loopback, ``prefect work-pool create --type process``, the deployment made by ``python -m flows.deploy``,
``prefect deployment run``, and a real ``prefect worker start --pool ... --run-once`` started in another
folder, which picks the run up, runs round 1 of a tiny workspace through DVC and exits. The run ends
COMPLETED, the round's outputs exist and ``dvc status`` is clean. Bad input to the deployment (a work
pool the server lacks, a workspace without params.yaml) is refused in one line with exit code 2,
and creates nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.integration.test_faults import dvc, new_workspace
from tests.integration.test_schedule import BIN, _api, _free_port, _start_server, _wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.scale]
POOL = "gpu-test"


def test_a_worker_on_the_pool_runs_the_deployed_round(tmp_path, tiny_checkpoint):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api, "PYTHONPATH": str(REPO),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_WORKER_QUERY_SECONDS": "2",
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    ws = new_workspace(tmp_path / "ws", tiny_checkpoint, rounds=1)
    elsewhere = tmp_path / "worker-machine"  # the worker starts outside the checkout: the deployment's pull step moves it there
    logs = tmp_path / "logs"
    logs.mkdir()
    elsewhere.mkdir()

    def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=timeout)

    def deploy(*args: str) -> subprocess.CompletedProcess:
        return cli(sys.executable, "-m", "flows.deploy", *args)

    server = _start_server(port, env, logs)
    worker = None
    try:
        _wait_healthy(api)
        created = cli(str(BIN / "prefect"), "work-pool", "create", "--type", "process", POOL)
        assert created.returncode == 0, created.stdout + created.stderr

        for args, named in ((("--pool", "no-such-pool", "--root", str(ws)), "no-such-pool"),
                            (("--pool", POOL, "--root", str(tmp_path / "empty")), str(tmp_path / "empty" / "params.yaml"))):
            refused = deploy(*args)
            assert refused.returncode == 2 and named in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert _api(api, "/deployments/filter", {}) == []  # the refusals created nothing

        done = deploy("--pool", POOL, "--root", str(ws), "--name", "tiny")
        assert done.returncode == 0 and "prefect deployment run rlint-rounds/tiny" in done.stdout, done.stdout + done.stderr
        [deployment] = _api(api, "/deployments/filter", {})
        assert deployment["work_pool_name"] == POOL and deployment["parameters"]["root"] == str(ws)
        assert deployment["global_concurrency_limit"]["limit"] == 1  # one run of the workspace at a time, whichever worker
        assert deployment["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]

        started = cli(str(BIN / "prefect"), "deployment", "run", "rlint-rounds/tiny")
        assert started.returncode == 0, started.stdout + started.stderr
        # --run-once: one poll (which finds the run just scheduled) and, with --limit, waits for it to finish
        worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--run-once", "--limit", "1"], cwd=elsewhere,
                                  env=env, stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT)
        worker.wait(timeout=420)
        [flow_run] = _api(api, "/flow_runs/filter", {})
    finally:
        for proc in (worker, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    worker_log = (logs / "worker.log").read_text(errors="replace")
    assert flow_run["state"]["type"] == "COMPLETED" and flow_run["deployment_id"] == deployment["id"], worker_log[-4000:]
    assert worker.returncode == 0 and "rlint-rounds" in worker_log, worker_log[-4000:]
    assert (ws / "metrics" / "evaluate" / "round=1.json").is_file() and (ws / "checkpoints" / "round=1" / "model.safetensors").is_file()
    status = dvc(ws, "status")
    assert "up to date" in status.stdout, status.stdout
    print(f"\nwork pool: flow run {flow_run['name']} of deployment rlint-rounds/tiny COMPLETED by a --run-once worker; dvc status clean")
