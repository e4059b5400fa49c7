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
from tests.stages.test_optimize import _own_rows

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _launch(ws: Path, *launcher: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*launcher, "-m", "rlint.cli", "optimize", "--round", "1"], cwd=ws, capture_output=True, text=True, env=env, timeout=600)


def test_accelerate_launch_cpu_config_and_two_processes_agree(tmp_path, tiny_checkpoint):
    ws = make_workspace(tmp_path / "ws", {"optimize": {"epochs": 1, "minibatch_size": 6, "micro_batch_size": 2, "lr": 0.01,
                                                      "kl_coef": 0.1, "sft_weight": 0.5, "lr_schedule": "cosine"}})
    shutil.copytree(tiny_checkpoint, ws / "checkpoints" / "round=0")
    write_rows(ws, "train_set", 1, _own_rows(tiny_checkpoint))

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
