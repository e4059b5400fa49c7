"""Prefect flow: run training rounds by asking DVC to reproduce each stage in order.

DVC decides what is up to date (a stage whose inputs did not change is skipped) and records
what ran in ``dvc.lock``; Prefect adds retries, logs and a per-round metrics artifact.

    python -m flows.rounds                 # bootstrap (if needed) and every round in params.yaml
    python -m flows.rounds --rounds 1      # only the first round

Prefect runs offline on a temporary local server: the defaults below are set before Prefect
is imported, and any value already in the environment wins.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

for _key, _value in {
    "PREFECT_HOME": str(Path.cwd() / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}.items():
    os.environ.setdefault(_key, _value)

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402

from flows.engine import engine_groups, log_dir, sharing, stale, wants_server  # noqa: E402
from flows.engine import shared_engine as engine_session  # noqa: E402
from flows.lock import workspace_lock  # noqa: E402
from rlint.config import ConfigError, load_params  # noqa: E402
from rlint.engine.served import ServerError  # noqa: E402
from rlint.stage_host import HostError  # noqa: E402
from rlint.stage_host import running as running_host  # noqa: E402
from rlint.report import format_table, markdown_table, round_table  # noqa: E402
from rlint.stage_graph import BASE_STAGES, ROUND_STAGES  # noqa: E402


class BadInputError(RuntimeError):
    """A stage refused its input (rlint exit code 2): retrying cannot help."""


def retry_unless_bad_input(task_, task_run, state) -> bool:
    """Prefect retry condition: retry any failure except bad input."""
    try:
        state.result()
    except BadInputError:
        return False
    except Exception:  # noqa: BLE001 - any other failure may be passing
        return True
    return False


def stream_command(command: list[str], cwd: str, env: dict, emit) -> tuple[int, str]:
    """Run ``command``, handing each line of its output (stdout and stderr together) to ``emit`` as
    soon as it is written, so a long stage shows its progress live. Returns the exit code and the output."""
    lines = []
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          errors="replace") as proc:
        for line in proc.stdout:
            lines.append(line)
            if line.strip():
                emit(line.rstrip("\n"))
        returncode = proc.wait()
    return returncode, "".join(lines)


def stage_environment(extra: dict | None = None) -> dict:
    """The environment of the ``dvc repro`` commands (and so of the stages): this one, this interpreter's bin first."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1", **(extra or {})}


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_bad_input, task_run_name="dvc repro {target}")
def reproduce(target: str, root: str, engine_env: dict | None = None) -> str:
    """``dvc repro --single-item <target>`` in ``root``, its log lines streamed to Prefect's log as they come; returns DVC's output.
    ``engine_env``: the shared engine server's and the stage host's addresses (flows/engine.py, rlint/stage_host.py),
    passed to the stage; with a stage host, ``dvc repro`` and the stage it runs are children of the host."""
    logger = get_run_logger()
    command = [sys.executable, "-P", "-m", "rlint.stage_host", "run", "dvc", "repro", "--single-item", target]
    returncode, output = stream_command(command, root, stage_environment(engine_env), logger.info)
    if returncode != 0:
        if "exited with 2" in output:
            raise BadInputError(f"{target}: bad input, not retried:\n{output[-2000:]}")
        raise RuntimeError(f"{target}: dvc repro failed with exit code {returncode}:\n{output[-2000:]}")
    return output


@task
def publish_metrics(root: str) -> str:
    """The per-round table, as a Prefect markdown artifact and as text."""
    rows = round_table(root)
    create_markdown_artifact(markdown=markdown_table(rows), key="rlint-rounds", description="rlint per-round metrics")
    return format_table(rows)


def reproduce_rounds(root: str, round_ids: list[int], shared_engine: str = "auto", engine_port: int | None = None,
                     timings: list[dict] | None = None, stage_host: str = "on") -> None:
    """The content records of params.yaml's inputs (stage input@<key>), bootstrap, then every stage of each round in
    order; DVC skips what is up to date, so a stopped campaign resumes at the first stage DVC reports as changed.

    ``shared_engine``: ``on``: the stages that sample from one checkpoint share one vLLM server, started before the first
    of them that DVC reruns and stopped after the last (flows/engine.py); ``off``: each stage starts its own engine;
    ``auto``: on where there is a GPU, off on a CPU (where scripts/bench_round.py measured the server slower).
    ``stage_host``: ``on``: every ``dvc repro`` and the stage it runs fork from one warm process that has done their
    imports (rlint/stage_host.py), started before the first stage and stopped after the last; ``off``: each is a fresh
    process. ``timings``: when given, gets one record per round stage (target, wall seconds, DVC's output) and per server
    (checkpoint round, start seconds), for scripts/bench_round.py."""
    if stage_host not in ("on", "off"):
        raise ValueError(f"stage_host={stage_host!r}: use on or off")
    if stage_host == "off":
        _reproduce_rounds(root, round_ids, shared_engine, engine_port, timings, {})
        return
    started = time.monotonic()
    try:
        with running_host(root, stage_environment(), log_path=log_dir(root) / "stage-host.log") as host_env:
            if timings is not None:
                timings.append({"host_start_seconds": time.monotonic() - started})
            _reproduce_rounds(root, round_ids, shared_engine, engine_port, timings, host_env)
    except HostError as err:
        raise RuntimeError(f"{err}: run the flow with --stage-host off, or see {log_dir(root) / 'stage-host.log'}") from None


def _reproduce_rounds(root: str, round_ids: list[int], shared_engine: str, engine_port: int | None, timings: list[dict] | None,
                      host_env: dict) -> None:
    params = load_params(Path(root) / "params.yaml")
    inputs = params.inputs
    for key, path in inputs.items():  # DVC itself would fail on a missing dependency (exit 255), and be retried
        if not (Path(root) / path).exists():  # an absolute path replaces root
            raise BadInputError(f"params.yaml: inputs.{key}: {path}: no such file or folder")
    for key in inputs:
        reproduce(f"input@{key}", root, host_env)
    for target in BASE_STAGES:
        reproduce(target, root, host_env)
    logger = get_run_logger()

    def run(target: str, engine_env: dict | None = None) -> None:
        started = time.monotonic()
        output = reproduce(target, root, {**host_env, **(engine_env or {})})
        if timings is not None:
            timings.append({"target": target, "start": started, "seconds": time.monotonic() - started, "output": output})

    share = sharing(shared_engine)
    for checkpoint_round, targets in engine_groups(round_ids, ROUND_STAGES):
        if checkpoint_round is None or not share or not wants_server(root, params, checkpoint_round) or not stale(root, targets):
            for target in targets:
                run(target)
            continue
        try:
            with engine_session(root, checkpoint_round, params, port=engine_port, emit=logger.info, timings=timings) as engine_env:
                for target in targets:
                    run(target, engine_env)
        except ServerError as err:  # port taken, a checkpoint vLLM cannot load: no stage of the group has run
            raise BadInputError(str(err)) from None


@flow(name="rlint-rounds", log_prints=True)
def run_rounds(root: str = ".", rounds: int | None = None, shared_engine: str = "auto", engine_port: int | None = None,
               stage_host: str = "on") -> str:
    """Bootstrap, then the first ``rounds`` rounds of params.yaml (default: all), stage by stage; ``shared_engine`` on: one
    vLLM server per policy checkpoint (on ``engine_port``, default a free one), off: one engine per stage, auto: on with a GPU;
    ``stage_host`` on: the stages fork from one warm process (rlint/stage_host.py), off: each starts its own.

    Holds the workspace lock (flows/lock.py): a second flow run on the same workspace fails at
    once with WorkspaceBusyError and touches nothing.
    """
    with workspace_lock(root, "rlint-rounds flow"):
        params = load_params(Path(root) / "params.yaml")
        round_ids = sorted(item["id"] for item in params.rounds.values())[:rounds]
        reproduce_rounds(root, round_ids, shared_engine=shared_engine, engine_port=engine_port, stage_host=stage_host)
        table = publish_metrics(root)
    print("\n" + table)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run rlint rounds through Prefect and DVC.")
    parser.add_argument("--root", default=".", help="workspace holding params.yaml and dvc.yaml")
    parser.add_argument("--rounds", type=int, default=None, help="run only the first N rounds of params.yaml")
    parser.add_argument("--shared-engine", choices=("auto", "on", "off"), default="auto",
                        help="one vLLM server per policy checkpoint for the stages that sample from it (auto: where there is a GPU)")
    parser.add_argument("--engine-port", type=int, default=None, help="loopback port of the shared vLLM server (default: a free one)")
    parser.add_argument("--stage-host", choices=("on", "off"), default="on",
                        help="on: every dvc repro and its stage fork from one warm process with their imports done (rlint/stage_host.py)")
    args = parser.parse_args(argv)
    try:  # bad parameters: one line and exit code 2 before any flow starts, as rlint's own commands do
        load_params(Path(args.root) / "params.yaml")
    except ConfigError as err:
        print(f"flows.rounds: error: {err}", file=sys.stderr)
        return 2
    try:
        run_rounds(root=str(Path(args.root).resolve()), rounds=args.rounds, shared_engine=args.shared_engine, engine_port=args.engine_port,
                   stage_host=args.stage_host)
    except BadInputError as err:  # Prefect has logged the traceback; the last line says what to fix
        print(f"flows.rounds: error: {' '.join(str(err).split())[:460]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
