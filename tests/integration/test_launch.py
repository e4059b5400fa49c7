"""The optimize stage under real launchers: ``accelerate launch`` with the shipped CPU config, and two
processes (torchrun, gloo) computing the same update as one."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rlint.data import write_rows
from tests.conftest import REPO, make_workspace
from tests.trainer.test_loop import own_rows

pytestmark = [pytest.mark.slow, pytest.mark.scale]
BIN = Path(sys.executable).parent


def _launch(ws: Path, *launcher: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*launcher, "-m", "rlint.cli", "optimize", "--round", "1"], cwd=ws, capture_output=True, text=True, env=env, timeout=600)


def test_accelerate_launch_cpu_config_and_two_processes_agree(tmp_path, tiny_checkpoint):
    ws = make_workspace(tmp_path / "ws", {"optimize": {"epochs": 1, "minibatch_size": 6, "micro_batch_size": 2, "lr": 0.01,
                                                      "kl_coef": 0.1, "sft_weight": 0.5, "lr_schedule": "cosine"}})
    shutil.copytree(tiny_checkpoint, ws / "checkpoints" / "round=0")
    write_rows(ws, "train_set", 1, own_rows(tiny_checkpoint))

    one = _launch(ws, str(BIN / "accelerate"), "launch", "--config_file", str(REPO / "configs" / "accelerate" / "cpu.yaml"),
                  "--num_cpu_threads_per_process", "1")
    assert one.returncode == 0, one.stderr[-3000:]
    assert "1 processes" in one.stderr
    metrics_one = json.loads((ws / "metrics" / "optimize" / "round=1.json").read_text())
    weights_one = load_file(ws / "checkpoints" / "round=1" / "model.safetensors")

    two = _launch(ws, str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29561")
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 processes" in two.stderr
    assert json.loads((ws / "metrics" / "optimize" / "round=1.json").read_text()) == metrics_one
    weights_two = load_file(ws / "checkpoints" / "round=1" / "model.safetensors")
    start = load_file(ws / "checkpoints" / "round=0" / "model.safetensors")
    for name in weights_one:
        update_one, update_two = weights_one[name] - start[name], weights_two[name] - start[name]
        assert torch.linalg.norm(update_two - update_one) <= 1e-3 * torch.linalg.norm(update_one) + 1e-7, name


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_launch(ws: Path, **launch) -> None:
    import yaml

    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["optimize"]["launch"] = {**params["optimize"].get("launch", {}), **launch}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _result(ws: Path) -> tuple[dict, dict]:
    return (json.loads((ws / "metrics" / "optimize" / "round=1.json").read_text()),
            load_file(ws / "checkpoints" / "round=1" / "model.safetensors"))


def _same_update(ws: Path, one: tuple[dict, dict], other: tuple[dict, dict]) -> None:
    """Tolerance: identical metrics (losses, ratios, counts, rounded as written) and, per tensor, an update within 0.1% (relative L2)
    of the one-process update: only the order of the gradient sums differs (gloo's all-reduce against one process's accumulation)."""
    assert other[0] == one[0]
    start = load_file(ws / "checkpoints" / "round=0" / "model.safetensors")
    for name in one[1]:
        update_one, update_other = one[1][name] - start[name], other[1][name] - start[name]
        assert torch.linalg.norm(update_other - update_one) <= 1e-3 * torch.linalg.norm(update_one) + 1e-7, name


def test_dvc_repro_optimize_launches_itself_on_two_processes_and_on_two_machines(tmp_path, tiny_checkpoint):
    """optimize.launch through ``dvc repro``: one process as today; 2 processes (torchrun, DDP on gloo); 2 "machines" on loopback
    (ranks 0 and 1, one process each, rank 1 started by hand in the same workspace). Same global batch, same update."""
    from tests.integration.test_faults import ENV, dvc

    ws = make_workspace(tmp_path / "ws", {"optimize": {"epochs": 1, "minibatch_size": 6, "micro_batch_size": 2, "lr": 0.01,
                                                      "kl_coef": 0.1, "sft_weight": 0.5, "lr_schedule": "cosine"}})
    assert dvc(ws, "init", "--no-scm", "-q").returncode == 0
    shutil.copytree(tiny_checkpoint, ws / "checkpoints" / "round=0")
    write_rows(ws, "train_set", 1, own_rows(tiny_checkpoint))

    def repro() -> subprocess.CompletedProcess:
        result = dvc(ws, "repro", "-s", "-f", "optimize@r1")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    assert "launching" not in (log := repro()).stdout + log.stderr
    one = _result(ws)

    _set_launch(ws, num_processes=2, main_process_port=_free_port())
    assert dvc(ws, "status", "optimize@r1").stdout.count("modified") == 0  # not a DVC param: the stage is not out of date
    log = repro()
    assert "launching 2 process(es) on machine 0 of 1" in log.stdout + log.stderr and "2 processes" in log.stdout + log.stderr
    _same_update(ws, one, _result(ws))

    _set_launch(ws, num_processes=2, num_machines=2, main_process_port=_free_port())
    env = {**ENV, "HOME": str(ws)}
    main = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", "-f", "optimize@r1"], cwd=ws, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        second = subprocess.run([sys.executable, "-m", "rlint.cli", "optimize", "--round", "1", "--machine-rank", "1"], cwd=ws, env=env,
                                capture_output=True, text=True, timeout=600)
        main_log, _ = main.communicate(timeout=600)
    finally:
        main.kill()
    assert main.returncode == 0, main_log[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "launching 1 process(es) on machine 1 of 2" in second.stderr and "launching 1 process(es) on machine 0 of 2" in main_log
    _same_update(ws, one, _result(ws))
