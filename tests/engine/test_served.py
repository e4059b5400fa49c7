"""The shared engine (rlint/engine/served.py): a stage writes the same bytes through the flow's vLLM server as with
its own engine; a server that cannot start is refused naming the port or the checkpoint."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlint.config import VLLMConfig
from rlint.engine.served import CHECKPOINT_VARIABLE, URL_VARIABLE, EngineServer, ServerError, served_for
from rlint.engine.vllm import vllm_available
from tests.conftest import REPO, TINY_PARAMS
from tests.engine.test_vllm import vllm_checkpoint  # noqa: F401  (the fixture)

SETTINGS = VLLMConfig(gpu_memory_utilization=0.05, enforce_eager=True)
needs_vllm = pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (make install installs it)")


def test_a_stage_uses_the_shared_server_only_for_the_checkpoint_it_serves(tmp_path):
    (tmp_path / "checkpoints" / "round=1").mkdir(parents=True)
    env = {URL_VARIABLE: "http://127.0.0.1:9", CHECKPOINT_VARIABLE: str(tmp_path / "checkpoints" / "round=1")}
    assert served_for(tmp_path / "checkpoints" / "round=1", env) == "http://127.0.0.1:9"
    assert served_for(tmp_path / "checkpoints" / ".." / "checkpoints" / "round=1", env) == "http://127.0.0.1:9"
    assert served_for(tmp_path / "checkpoints" / "round=0", env) is None
    assert served_for(tmp_path / "checkpoints" / "round=1", {}) is None


def test_a_checkpoint_that_is_no_model_is_refused_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServerError, match=rf"engine server for {tmp_path / 'empty'}"):
        EngineServer(tmp_path / "empty", SETTINGS)


@needs_vllm
def test_a_taken_port_is_refused_naming_it(vllm_checkpoint):  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=rf"port {port} on 127\.0\.0\.1 is taken"):
            EngineServer(vllm_checkpoint, SETTINGS, port=port)


def _workspace(root: Path, checkpoint: Path) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    params["sampling"].update(engine="vllm", vllm={**params["sampling"]["vllm"], "gpu_memory_utilization": 0.05})
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(checkpoint, root / "checkpoints" / "round=0")
    return root


def _run(root: Path, stage: str, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "rlint.cli", "--root", str(root), stage, "--round", "1"],
                          env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _data(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "data").rglob("*")) if p.is_file()}


@pytest.mark.slow
@needs_vllm
def test_rollout_and_mine_write_the_same_bytes_through_the_shared_server(tmp_path, vllm_checkpoint):  # noqa: F811
    own, shared = _workspace(tmp_path / "own", vllm_checkpoint), _workspace(tmp_path / "shared", vllm_checkpoint)
    for stage in ("rollout", "mine"):
        assert "shared server" not in _run(own, stage, {}).stderr
    server = EngineServer(shared / "checkpoints" / "round=0", SETTINGS, log_path=tmp_path / "server.log")
    try:
        for stage in ("rollout", "mine"):  # (mine samples only where a group has a right answer: its engine starts lazily)
            log = _run(shared, stage, server.environment()).stderr
            assert ("the shared server" in log or stage == "mine") and "vLLM engine on" not in log  # no engine of its own
        other = server.environment() | {CHECKPOINT_VARIABLE: str(own / "checkpoints" / "round=0")}  # a server for another checkpoint: unused
        assert "the shared server" not in _run(_workspace(tmp_path / "other", vllm_checkpoint), "rollout", other).stderr
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert _data(own) and _data(shared) == _data(own)
