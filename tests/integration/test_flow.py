"""The Prefect flow runs a real tiny round by asking DVC for each stage, and does not retry bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _workspace(path: Path, **overrides) -> Path:
    ws = make_workspace(path, {"bootstrap": {"model_path": str(REPO / "checkpoints" / "round=0"), "eval_problems": 8}, **overrides}, rounds=1)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=ws, check=True)
    return ws


def test_flow_runs_a_round_and_publishes_the_table(harness, tmp_path):
    from flows.rounds import run_rounds

    ws = _workspace(tmp_path / "ws")
    table = run_rounds(root=str(ws))
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["round", "heldout_acc", "sound_acc", "train_acc"]
    assert [line.split()[0] for line in lines[1:]] == ["0", "1"]
    assert (ws / "dvc.lock").is_file() and (ws / "checkpoints" / "round=1" / "model.safetensors").is_file()


def test_bad_input_fails_once_without_retries(harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.rounds import run_rounds

    missing = _workspace(tmp_path / "missing", bootstrap={"model_path": str(tmp_path / "no-such-model")})
    state = run_rounds(root=str(missing), return_state=True)  # refused before any stage: DVC would fail on it (exit 255), retried
    assert state.is_failed() and "inputs.bootstrap.model_path: " in str(state.message) + repr(state.data)
    with get_client(sync_client=True) as client:
        assert not client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))

    (tmp_path / "not-a-model").mkdir()  # there, but no model: the bootstrap stage refuses it (exit 2), not retried
    (tmp_path / "not-a-model" / "notes.txt").write_text("no weights here\n")
    ws = _workspace(tmp_path / "bad", bootstrap={"model_path": str(tmp_path / "not-a-model")})
    state = run_rounds(root=str(ws), return_state=True)
    assert state.is_failed()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    bootstrap = [r for r in runs if r.name.startswith("dvc repro bootstrap")]
    assert len(bootstrap) == 1 and bootstrap[0].run_count == 1
    assert not (ws / "checkpoints" / "round=0").exists()
