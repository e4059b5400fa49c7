"""The warm stage host (rlint/stage_host.py): a command forked from it writes the bytes it writes alone, passes its exit
code and output through, dies with its client, and the host dies with the process that started it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rlint.stage_host import HOST_ENV, running
from tests.conftest import REPO, make_workspace

pytestmark = pytest.mark.slow  # the host imports torch, transformers and DVC once (5-10 s), then each command forks
RLINT = str(Path(sys.executable).parent / "rlint")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
ENV.pop(HOST_ENV, None)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    log = tmp_path_factory.mktemp("host") / "host.log"
    with running(REPO, ENV, log_path=log) as env:
        yield {**ENV, **env}, log


def _workspace(path: Path, checkpoint: Path) -> Path:
    ws = make_workspace(path, {"rollout": {"prompts_per_round": 3, "samples_per_prompt": 3}, "sampling": {"max_new_tokens": 24}})
    shutil.copytree(checkpoint, ws / "checkpoints" / "round=0")
    return ws


def _files(ws: Path) -> dict[str, bytes]:
    return {str(p.relative_to(ws)): p.read_bytes() for top in ("data", "checkpoints") for p in sorted((ws / top).rglob("*"))
            if p.is_file() and "inputs" not in p.parts}


def test_stages_through_the_host_write_the_bytes_they_write_alone(host, tmp_path, tiny_checkpoint):
    env, log = host
    alone, hosted = _workspace(tmp_path / "alone", tiny_checkpoint), _workspace(tmp_path / "hosted", tiny_checkpoint)
    for command in (["archive", "--round", "0"], ["rollout", "--round", "1"], ["mine", "--round", "1"], ["correct", "--round", "1"]):
        done = subprocess.run([RLINT, *command], cwd=alone, env=ENV, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        done = subprocess.run([RLINT, *command], cwd=hosted, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"rlint {command[0]} --round {command[2]}: work starts" in done.stderr  # the command's own log, through the client
    assert _files(hosted) == _files(alone) and len(_files(alone)) >= 5
    served = log.read_text()
    assert served.count("`rlint ") == 4 and "`rlint rollout --round 1` exited 0" in served, served


def test_exit_code_and_the_one_line_refusal_pass_through(host, tmp_path, tiny_checkpoint):
    env, log = host
    ws = _workspace(tmp_path / "ws", tiny_checkpoint)
    done = subprocess.run([RLINT, "rollout", "--round", "7"], cwd=ws, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("rlint rollout: error: --round 7: not a round"), done.stderr
    assert "`rlint rollout --round 7` exited 2" in log.read_text()
    assert not (ws / "data" / "rollouts").exists()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.1)


def test_a_killed_client_takes_its_command_and_what_it_started_down(host, tmp_path):
    """``dvc repro`` of a stage that sleeps, through the host; SIGKILL the client: the stage's process goes too."""
    env, _ = host
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=repo, check=True, env=ENV)
    (repo / "dvc.yaml").write_text("stages:\n  wait:\n    cmd: python -c \"import os, time; open('pid', 'w').write(str(os.getpid())); "
                                   "time.sleep(120)\"\n")
    client = subprocess.Popen([sys.executable, "-P", "-m", "rlint.stage_host", "run", "dvc", "repro", "wait"], cwd=repo, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until(lambda: (repo / "pid").is_file() and (repo / "pid").read_text().strip(), 60, "the stage to start")
        stage = int((repo / "pid").read_text())
        assert _alive(stage) and psutil.Process(stage).ppid() != client.pid  # a grandchild of the host, not of the client
        client.send_signal(signal.SIGKILL)
        client.wait()
        _wait_until(lambda: not _alive(stage), 15, "the stage to end after its client was killed")
    finally:
        if client.poll() is None:
            client.kill()


PARENT = """
import sys, time
sys.path.insert(0, {repo!r})
from rlint.stage_host import running
with running({repo!r}) as env:
    print(env["RLINT_STAGE_HOST"], flush=True)
    time.sleep(300)
"""


def test_the_host_stops_when_the_process_that_started_it_is_gone(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(repo=str(REPO))], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        address = parent.stdout.readline().strip()
        assert address.endswith("host.sock") and os.path.exists(address)
        hosts = [p for p in psutil.process_iter(["cmdline"]) if address in " ".join(p.info["cmdline"] or [])]
        assert len(hosts) == 1
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        _wait_until(lambda: not _alive(hosts[0].pid), 15, "the host to stop after its parent was killed")
        assert not os.path.exists(address)
    finally:
        if parent.poll() is None:
            parent.kill()
