"""``python -m flows.deploy`` refuses bad input in one line with exit code 2 before it contacts any
server: a workspace without a valid params.yaml, a source folder without the flow's file, no
``PREFECT_API_URL``. The deployment itself, on a real server and worker: tests/integration/test_work_pool.py."""

import shutil

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.deploy import main
from tests.conftest import REPO


@pytest.fixture
def workspace(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def refusal(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("flows.deploy: error: ")
    return err


def test_a_workspace_without_params_is_refused(tmp_path, capsys):
    assert f"{tmp_path}/params.yaml: file not found" in refusal(capsys, ["--pool", "gpu", "--root", str(tmp_path)])


def test_invalid_params_are_refused_with_the_field(workspace, capsys):
    (workspace / "params.yaml").write_text((workspace / "params.yaml").read_text() + "nonsense_key: 1\n")
    assert "nonsense_key" in refusal(capsys, ["--pool", "gpu", "--root", str(workspace)])


def test_a_source_without_the_flow_is_refused(workspace, tmp_path, capsys):
    err = refusal(capsys, ["--pool", "gpu", "--root", str(workspace), "--source", str(tmp_path / "nowhere"), "--flow", "campaign"])
    assert "nowhere" in err and "flows/campaign.py" in err


def test_no_api_url_is_refused_rather_than_a_temporary_server(workspace, capsys):
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert "PREFECT_API_URL is not set" in refusal(capsys, ["--pool", "gpu", "--root", str(workspace)])
