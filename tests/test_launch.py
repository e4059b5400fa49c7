"""optimize.launch (rlint/launch.py): the settings' checks, the launcher command lines, and the refusal
of settings that cannot start, before any process starts and with nothing written."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import sys

import pytest
import yaml

from rlint.cli import main
from rlint.config import ConfigError, load_params
from rlint.launch import LaunchConfig, LaunchError, check_launch, launch_command, launched, with_machine_rank
from tests.conftest import make_workspace


@pytest.mark.parametrize(("settings", "key"), [
    ({"num_processes": 0}, "optimize.launch.num_processes"),
    ({"num_processes": 3, "num_machines": 2}, "optimize.launch.num_processes=3"),
    ({"num_machines": 2, "num_processes": 2, "machine_rank": 2}, "optimize.launch.machine_rank=2"),
    ({"main_process_port": 70000}, "optimize.launch.main_process_port must be in [1, 65535], got 70000"),
    ({"connect_timeout": 0}, "optimize.launch.connect_timeout"),
])
def test_settings_that_cannot_describe_a_launch_are_refused_naming_the_key(settings, key):
    with pytest.raises(LaunchError, match=re.escape(key)):
        LaunchConfig(**settings)


def test_load_params_reads_the_launch_section_and_refuses_an_unknown_key(tmp_path):
    ws = make_workspace(tmp_path / "ws", {"optimize": {"launch": {"num_processes": 2, "num_machines": 2}}})
    assert load_params(ws / "params.yaml").optimize.launch.processes_per_machine == 1
    ws = make_workspace(tmp_path / "bad", {"optimize": {"launch": {"num_gpus": 2}}})
    with pytest.raises(ConfigError, match=r"optimize\.launch: unknown key\(s\) num_gpus"):
        load_params(ws / "params.yaml")


def test_the_machine_rank_comes_from_the_flag_then_the_environment_then_params():
    cfg = LaunchConfig(num_processes=4, num_machines=4, machine_rank=0)
    assert with_machine_rank(cfg, None, {}).machine_rank == 0
    assert with_machine_rank(cfg, None, {"RLINT_MACHINE_RANK": "3"}).machine_rank == 3
    assert with_machine_rank(cfg, 2, {"RLINT_MACHINE_RANK": "3"}).machine_rank == 2
    with pytest.raises(LaunchError, match="RLINT_MACHINE_RANK='x'"):
        with_machine_rank(cfg, None, {"RLINT_MACHINE_RANK": "x"})
    with pytest.raises(LaunchError, match="machine_rank=4"):
        with_machine_rank(cfg, 4, {})


def test_a_launched_process_is_recognised_by_the_variables_launchers_set():
    assert not launched({})
    assert launched({"RLINT_LAUNCHED": "1"}) and launched({"LOCAL_RANK": "0"}) and launched({"ACCELERATE_USE_CPU": "True"})


def test_launch_commands_torchrun_without_a_config_file_and_accelerate_with_one(tmp_path):
    cfg = LaunchConfig(num_processes=8, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1", main_process_port=29600)
    assert launch_command(cfg, tmp_path, ["optimize", "--round", "3"], python="py") == [
        "py", "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", "1", "--nproc_per_node", "4",
        "--master_addr", "10.0.0.1", "--master_port", "29600", "-m", "rlint.cli", "optimize", "--round", "3"]
    cfg = LaunchConfig(num_processes=8, config_file="configs/accelerate/fsdp.yaml")
    assert launch_command(cfg, tmp_path, ["optimize", "--round", "3"], python="py") == [
        "py", "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "configs/accelerate/fsdp.yaml"),
        "--num_processes", "8", "--num_machines", "1", "--machine_rank", "0", "--main_process_ip", "127.0.0.1",
        "--main_process_port", "29500", "-m", "rlint.cli", "optimize", "--round", "3"]


def test_launch_checks_name_the_key_that_cannot_start(tmp_path):
    with pytest.raises(LaunchError, match=r"optimize\.launch\.config_file='[^']*missing\.yaml': no such file"):
        check_launch(LaunchConfig(num_processes=2, config_file="missing.yaml"), tmp_path, gpus=0)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(LaunchError, match="expected an Accelerate config mapping"):
        check_launch(LaunchConfig(num_processes=2, config_file="list.yaml"), tmp_path, gpus=0)
    (tmp_path / "gpu.yaml").write_text("distributed_type: FSDP\nnum_processes: 8\n")
    with pytest.raises(LaunchError, match=r"optimize\.launch\.num_processes=8: 8 process\(es\) per machine, .*FSDP .* has 2"):
        check_launch(LaunchConfig(num_processes=8, config_file="gpu.yaml"), tmp_path, gpus=2)
    check_launch(LaunchConfig(num_processes=2, config_file="gpu.yaml"), tmp_path, gpus=2)  # fits
    with pytest.raises(LaunchError, match=r"optimize\.launch\.num_processes=4: .* one per GPU, and this machine has 2"):
        check_launch(LaunchConfig(num_processes=4), tmp_path, gpus=2)
    check_launch(LaunchConfig(num_processes=4), tmp_path, gpus=0)  # gloo processes on a CPU
    with pytest.raises(LaunchError, match=r"optimize\.launch\.main_process_ip='no-such-host\.invalid': the address does not resolve"):
        check_launch(LaunchConfig(num_processes=2, main_process_ip="no-such-host.invalid"), tmp_path, gpus=0)
    with pytest.raises(LaunchError, match=r"main_process_ip='192\.0\.2\.1': not an address of this machine"):
        check_launch(LaunchConfig(num_processes=2, num_machines=2, main_process_ip="192.0.2.1"), tmp_path, gpus=0)


def test_a_machine_of_rank_above_0_waits_for_the_main_port_then_gives_up_naming_it(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = LaunchConfig(num_processes=2, num_machines=2, machine_rank=1, main_process_port=port, connect_timeout=1.5)
    with pytest.raises(LaunchError, match=rf"main_process_ip='127\.0\.0\.1': port {port} did not answer within 1\.5 s"):
        check_launch(cfg, tmp_path, gpus=0)
    with socket.socket() as listening:  # machine 0 up: the check passes
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_launch(LaunchConfig(num_processes=2, num_machines=2, machine_rank=1, main_process_port=listening.getsockname()[1]),
                     tmp_path, gpus=0)


def _tree_hash(path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()


@pytest.mark.parametrize(("launch", "key"), [
    ({"num_processes": 2, "config_file": "configs/none.yaml"}, "optimize.launch.config_file"),
    ({"num_processes": 2, "main_process_ip": "no-such-host.invalid"}, "optimize.launch.main_process_ip"),
])
def test_rlint_optimize_refuses_a_launch_that_cannot_start_in_one_line_with_nothing_written(tmp_path, tiny_checkpoint, capsys, monkeypatch,
                                                                                           launch, key):
    from rlint.data import write_rows
    from tests.trainer.test_loop import own_rows

    for name in ("RLINT_LAUNCHED", "LOCAL_RANK", "ACCELERATE_USE_CPU", "RLINT_MACHINE_RANK"):
        monkeypatch.delenv(name, raising=False)
    ws = make_workspace(tmp_path / "ws", {"optimize": {"launch": launch}})
    shutil.copytree(tiny_checkpoint, ws / "checkpoints" / "round=0")
    write_rows(ws, "train_set", 1, own_rows(tiny_checkpoint))
    before = _tree_hash(ws / "checkpoints")
    capsys.readouterr()
    assert main(["--root", str(ws), "optimize", "--round", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rlint optimize: error: ") and key in err[0], err
    assert _tree_hash(ws / "checkpoints") == before and not (ws / "checkpoints" / "round=1").exists()
    assert not (ws / "metrics" / "optimize").exists()
    assert yaml.safe_load((ws / "params.yaml").read_text())["optimize"]["launch"] == launch
    assert sys.modules.get("rlint.launch") is not None
