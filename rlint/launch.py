"""The optimize stage on more than one process: ``optimize.launch`` in params.yaml.

With one process and no Accelerate config file, ``rlint optimize`` trains in its own process, as
it always has. Otherwise the command checks the launch settings, then replaces itself with a
launcher that starts the same command on every process of this machine:

- no ``config_file``: ``torchrun`` (DDP; gloo on a CPU, NCCL on GPUs, Accelerate reads its
  environment), which is how several processes train on a CPU (``accelerate launch`` runs one
  process there, or needs MPI);
- a ``config_file`` (configs/accelerate/ddp.yaml, fsdp.yaml, a DeepSpeed one): ``accelerate launch``
  with it, its process and machine counts and address taken from ``optimize.launch``.

So ``dvc repro optimize@rK`` and the flows need no edited command. On several machines the same
params.yaml is used on each; a machine other than the first runs ``rlint optimize --round K
--machine-rank R`` (or sets ``RLINT_MACHINE_RANK``) in its own copy of the workspace. The launched
processes see ``RLINT_LAUNCHED=1`` (or a launcher's own variables) and train instead of launching
again. docs/scaling.md has the commands.

Settings that cannot start fail here, before any process starts, with one line naming the key:
a missing or unreadable config file, more processes per machine than GPUs for a GPU config, a
main address that does not resolve, is not this machine's (rank 0 of several), or does not
answer within ``connect_timeout`` (ranks above 0). Nothing is written then; the previous
checkpoint is only ever read.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from rlint.config import LaunchConfig, LaunchError, with_changes  # noqa: F401 - LaunchConfig re-exported: the section lives in rlint/config/training.py
from rlint.params_file import short

GPU_DISTRIBUTED_TYPES = ("MULTI_GPU", "FSDP", "DEEPSPEED", "MEGATRON_LM")  # Accelerate configs that place one process per GPU
LAUNCHER_VARIABLES = ("RLINT_LAUNCHED", "LOCAL_RANK", "ACCELERATE_USE_CPU")  # set in a process a launcher started


def launched(env: dict[str, str]) -> bool:
    """Whether this process was started by a launcher (then it trains; it never launches again)."""
    return any(name in env for name in LAUNCHER_VARIABLES)


def with_machine_rank(cfg: LaunchConfig, rank: int | None, env: dict[str, str]) -> LaunchConfig:
    """``cfg`` with this machine's rank: ``--machine-rank``, else ``RLINT_MACHINE_RANK``, else params.yaml's."""
    if rank is None and env.get("RLINT_MACHINE_RANK", "").strip():
        value = env["RLINT_MACHINE_RANK"].strip()
        if not value.isdigit():
            raise LaunchError(f"RLINT_MACHINE_RANK={short(value)}: expected a machine rank (0, 1, ...)")
        rank = int(value)
    return cfg if rank is None else with_changes(cfg, machine_rank=rank)


def config_file_path(cfg: LaunchConfig, root: Path) -> Path | None:
    if cfg.config_file is None:
        return None
    path = Path(cfg.config_file)
    return path if path.is_absolute() else root / path


def read_config_file(path: Path) -> dict:
    """The Accelerate config file as a mapping; a missing or unreadable one names the key."""
    import yaml

    where = f"optimize.launch.config_file={str(path)!r}"  # whole: the file name is the point
    if not path.is_file():
        raise LaunchError(f"{where}: no such file")
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise LaunchError(f"{where}: not readable as YAML ({short(str(err).splitlines()[0])})") from None
    if not isinstance(content, dict):
        raise LaunchError(f"{where}: expected an Accelerate config mapping, got {type(content).__name__}")
    return content


def gpu_count() -> int:
    """GPUs this process can see (0 where torch has no CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_main_address(cfg: LaunchConfig, probe=socket.create_connection, clock=time.monotonic, sleep=time.sleep) -> None:
    """The rendezvous address can work: it resolves; on several machines, rank 0 owns it and the
    others reach its port within ``connect_timeout`` (machine 0 may start a little later)."""
    where = f"optimize.launch.main_process_ip={short(cfg.main_process_ip)}"
    try:
        socket.getaddrinfo(cfg.main_process_ip, cfg.main_process_port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise LaunchError(f"{where}: the address does not resolve ({err})") from None
    if cfg.num_machines == 1:
        return
    if cfg.machine_rank == 0:
        try:  # machine 0 listens on it: the address must be one of this machine's
            with socket.socket(socket.AF_INET6 if ":" in cfg.main_process_ip else socket.AF_INET) as s:
                s.bind((cfg.main_process_ip, 0))
        except OSError as err:
            raise LaunchError(f"{where}: not an address of this machine, which is machine_rank 0 ({err.strerror})") from None
        return
    deadline = clock() + cfg.connect_timeout
    while True:
        try:
            probe((cfg.main_process_ip, cfg.main_process_port), timeout=5).close()
            return
        except OSError:
            if clock() >= deadline:
                raise LaunchError(f"{where}: port {cfg.main_process_port} did not answer within {cfg.connect_timeout:g} s "
                                  f"(optimize.launch.connect_timeout); is machine 0 training?") from None
            sleep(1.0)


def check_launch(cfg: LaunchConfig, root: Path, gpus: int | None = None) -> None:
    """Every setting that can be checked before a process starts; raises :class:`LaunchError`."""
    path = config_file_path(cfg, root)
    gpus = gpu_count() if gpus is None else gpus
    if path is not None:
        content = read_config_file(path)
        kind = str(content.get("distributed_type", "NO")).upper()
        on_gpus = kind in GPU_DISTRIBUTED_TYPES and not content.get("use_cpu", False)
        if on_gpus and cfg.processes_per_machine > gpus:
            raise LaunchError(f"optimize.launch.num_processes={cfg.num_processes}: {cfg.processes_per_machine} process(es) per machine, "
                              f"but the config file's {kind} needs one GPU each and this machine has {gpus}")
    elif gpus and cfg.processes_per_machine > gpus:
        raise LaunchError(f"optimize.launch.num_processes={cfg.num_processes}: {cfg.processes_per_machine} process(es) per machine, "
                          f"one per GPU, and this machine has {gpus}")
    check_main_address(cfg)


def launch_command(cfg: LaunchConfig, root: Path, rlint_args: list[str], python: str = sys.executable) -> list[str]:
    """The launcher command line that runs ``python -m rlint.cli *rlint_args`` on this machine's processes."""
    where = ["--num_machines" if cfg.config_file else "--nnodes", str(cfg.num_machines)]
    if cfg.config_file is not None:
        return [python, "-m", "accelerate.commands.launch", "--config_file", str(config_file_path(cfg, root)),
                "--num_processes", str(cfg.num_processes), *where, "--machine_rank", str(cfg.machine_rank),
                "--main_process_ip", cfg.main_process_ip, "--main_process_port", str(cfg.main_process_port),
                "-m", "rlint.cli", *rlint_args]
    return [python, "-m", "torch.distributed.run", *where, "--node_rank", str(cfg.machine_rank),
            "--nproc_per_node", str(cfg.processes_per_machine), "--master_addr", cfg.main_process_ip,
            "--master_port", str(cfg.main_process_port), "-m", "rlint.cli", *rlint_args]


def relaunch(cfg: LaunchConfig, root: Path, rlint_args: list[str]) -> None:
    """Replace this process by the launcher (signals then reach it and its processes directly)."""
    command = launch_command(cfg, root, rlint_args)
    env = {**os.environ, "RLINT_LAUNCHED": "1", "RLINT_MACHINE_RANK": str(cfg.machine_rank)}
    env.pop("RLINT_STAGE_HOST", None)  # the launched processes start on their own, not as children of the stage host
    print(f"optimize: launching {cfg.processes_per_machine} process(es) on machine {cfg.machine_rank} of {cfg.num_machines}: "
          f"{' '.join(command[1:4])} ...", file=sys.stderr, flush=True)
    os.execve(command[0], command, env)
