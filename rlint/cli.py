"""The ``rlint`` command: one sub-command per stage (what dvc.yaml calls), plus ``input``, ``import-model``, ``report``, ``audit`` and ``add-round``.

Exit codes: 0 done, 2 bad input (params, dataset, checkpoint, an engine not installed), 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from pathlib import Path

from rlint.stage_graph import COMMANDS, round_stages, stage  # rlint <stage>: rlint/stages/<stage>.py

# The other commands' modules, imported by name only when run: a stage's command imports none of
# them, so they are no dependency of any stage (scripts/check_stage_deps.py reads this and COMMANDS).
TOOLS = {"audit": "rlint.audit.cli", "report": "rlint.report", "add-round": "rlint.rounds", "input": "rlint.stages.input",
         "import-model": "rlint.import_model"}


def checkpoints_read(command: str, round_id: int | None, params, root: Path) -> list[Path]:
    """The model directories a stage loads (dvc.yaml's checkpoint dependencies)."""
    from rlint.checkpoints import checkpoint_path

    if command == "bootstrap":
        return [Path(params.bootstrap.model_path)] if params.bootstrap.model_path else []
    if command == "archive":
        return []
    if command == "evaluate":
        return [checkpoint_path(root, round_id)]
    if command == "optimize" and params.optimize.kl_coef > 0 and round_id > 1:
        return [checkpoint_path(root, round_id - 1), checkpoint_path(root, 0)]
    return [checkpoint_path(root, round_id - 1)]


def loads_model(command: str, round_id: int | None, params) -> bool:
    """Whether the stage loads a model of :func:`checkpoints_read` with transformers (weights, or a tokenizer,
    which may read config.json): archive never does; credit only to score answers (``info_gain``),
    repairs (``mine.strategy: repair``) or to decode replayed prefixes (rounds after the first, as
    rlint/stages/rollout.py replays). The others sample or train. A stage that loads none skips the
    architecture check (transformers, torch); :func:`check_inputs_early` has checked the rest."""
    if command == "archive":
        return False
    if command == "credit":
        from rlint.config.names import ESTIMATORS_SCORING_ANSWERS  # not rlint.credit: no stage but credit depends on it

        replaying = params.archive.replay_share > 0 and params.mode != "outcome" and round_id > 1
        return params.credit.estimator in ESTIMATORS_SCORING_ANSWERS or (params.mode != "outcome" and params.mine.strategy == "repair") or replaying
    return True


def no_progress_bars() -> None:
    """transformers' and the Hugging Face hub's progress bars off without importing either (transformers
    imports torch): ``HF_HUB_DISABLE_PROGRESS_BARS`` is read when they load; when one is loaded already
    (the CLI called in a process that imported it), it is switched off directly."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers.utils.logging" in sys.modules:
        sys.modules["transformers.utils.logging"].disable_progress_bar()
    elif "huggingface_hub.utils" in sys.modules:
        sys.modules["huggingface_hub.utils"].disable_progress_bars()


# what quiet_third_party sets (a value already in the environment wins), and the offline switches a stage sets before
# models load; the stage host (rlint/stage_host.py) sets both before its imports, since libraries read some at import
QUIET_ENV = {"VLLM_LOGGING_LEVEL": "ERROR", "TORCH_CPP_LOG_LEVEL": "ERROR", "TRANSFORMERS_VERBOSITY": "error",
             "TQDM_DISABLE": "1"}  # TQDM_DISABLE: bars drawn with tqdm directly (transformers' GGUF conversion)
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # models and data come from local paths only
QUIET_LOGGERS = ("vllm", "transformers", "accelerate", "torch", "math_verify", "latex2sympy2_extended", "filelock", "urllib3")


def quiet_third_party() -> None:
    """Known third-party noise off, before those libraries load: their Python warnings, their loggers
    below ERROR, vLLM's own logging (``VLLM_LOGGING_LEVEL``) and torch's C++ warnings
    (``TORCH_CPP_LOG_LEVEL``); a value already in the environment wins. ``rlint --verbose`` skips this."""
    import warnings

    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(?!rlint)")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """``rlint``: run one command; the vocabulary bound it sets for Parquet reads (``rlint.data.VOCAB_SIZE``)
    holds for that command only, not for later work in the same process (tests, notebooks).

    The console command (``argv`` None) runs in a child of the warm stage host when ``RLINT_STAGE_HOST`` names one
    (rlint/stage_host.py; the rounds flow starts it)."""
    if argv is None and os.environ.get("RLINT_STAGE_HOST"):
        from rlint.stage_host import main_or_forward

        return main_or_forward("rlint", sys.argv[1:])  # no host answering: this function again, with the argv
    try:
        return _run(argv)
    finally:
        data = sys.modules.get("rlint.data")
        if data is not None:
            data.VOCAB_SIZE = None


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="rlint", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    parser.add_argument("--root", default=".", help="workspace root holding data/, checkpoints/, metrics/")
    parser.add_argument("--verbose", action="store_true", help="show third-party warnings and logs (vLLM, torch, transformers), hidden by default")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        sub = commands.add_parser(name, help=f"run the {name} stage")
        if stage(name).per_round:
            sub.add_argument("--round", type=int, required=True, help="round number k >= 1" + (" (0: the empty base archive)" if name == "archive" else ""))
        if name == "optimize":
            sub.add_argument("--machine-rank", type=int, help="this machine's rank when optimize.launch.num_machines > 1 (default: "
                             "RLINT_MACHINE_RANK, else optimize.launch.machine_rank); docs/scaling.md")
    commands.add_parser("report", help="print the per-round metrics table")
    audit = commands.add_parser("audit", help="audit the supervision across rounds: summary, HTML report, lineage of an id")
    audit.add_argument("--root", default=argparse.SUPPRESS, help="workspace root (same as the global --root)")
    audit.add_argument("--rev", help="read the rounds of this git revision through DVC instead of the workspace")
    audit.add_argument("--html", type=Path, help="also write a self-contained HTML report to this file")
    audit.add_argument("--lineage", metavar="ID", help="print the chain of an example, branch, continuation, failure or rollout id instead")
    audit.add_argument("--plots", type=Path, help="write the per-round curves (SVG) and rounds.json here; dvc.yaml's plots read ROOT/audit")
    audit.add_argument("--no-cache", action="store_true", help="recompute every round (default: per-round advantage moments cached in ROOT/audit/cache)")
    commands.add_parser("add-round", help="append the next round to params.yaml (dvc.yaml picks it up)")
    gguf = commands.add_parser("import-model", help="convert a GGUF checkpoint into a safetensors model directory (bootstrap.model_path)")
    gguf.add_argument("gguf_file", help="a .gguf file")
    gguf.add_argument("out", help="the model directory to write (must not exist, or be empty)")
    version = commands.add_parser("input", help="record the content hash of a file or folder of params.yaml's inputs (dvc.yaml's stage input@<key>)")
    version.add_argument("--key", required=True, help="a key of inputs: task.path, task.heldout_path or bootstrap.model_path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        quiet_third_party()

    root = Path(args.root)
    if args.command == "audit":  # before the stage imports below: the audit needs no torch
        run_audit = importlib.import_module(TOOLS["audit"]).run_audit
        from rlint.data import DataError

        try:
            return run_audit(root, rev=args.rev, html=args.html, lineage_id=args.lineage, plots=args.plots, cache=not args.no_cache)
        except DataError as err:
            return refuse("audit", err)

    if args.command == "import-model":  # no parameters file: a conversion of one file
        tool = importlib.import_module(TOOLS["import-model"])
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            return tool.main(args.gguf_file, args.out)
        except tool.ImportModelError as err:
            return refuse("import-model", err)

    from rlint.checkpoints import CheckpointError
    from rlint.config import ConfigError, load_params
    from rlint.launch import check_launch, launched, relaunch, with_machine_rank
    from rlint.tasks.base import TaskInputError

    params = None
    if args.command not in ("report", "add-round"):
        try:  # inputs first, before torch and transformers load: a refusal takes a second or two, not ten
            params = load_params(root / args.params)  # an absolute --params replaces root
            if args.command == "input":  # hashing only: no torch, no pyarrow
                record = importlib.import_module(TOOLS["input"]).run(params, args.key, root)
                print(f"input {args.key}: {record['path']}: {record['kind']}, {record['files']} file(s), {record['bytes']:,} bytes, "
                      f"sha256 {record['sha256'][:16]}…")
                return 0
            check_round(args.command, getattr(args, "round", None), params)
        except ConfigError as err:
            return refuse(args.command, err)
    from rlint.data import DataError  # pyarrow: after the parameters

    if params is not None:
        try:
            check_inputs_early(args.command, getattr(args, "round", None), params, root)
        except (CheckpointError, TaskInputError, DataError) as err:
            return refuse(args.command, err)

    if args.command == "optimize" and not launched(os.environ):
        try:  # more than one process: this command becomes their launcher (rlint/launch.py) and does not return
            launch = with_machine_rank(params.optimize.launch, args.machine_rank, os.environ)
            if not launch.single_process:
                check_launch(launch, root)
                relaunch(launch, root, list(sys.argv[1:] if argv is None else argv))
        except ConfigError as err:
            return refuse(args.command, err)

    from rlint.engine import EngineError

    try:
        if args.command == "report":
            importlib.import_module(TOOLS["report"]).print_report(root)
            return 0
        if args.command == "add-round":
            print(f"added round {importlib.import_module(TOOLS['add-round']).add_round(root / args.params)}")
            return 0
        for key, value in OFFLINE_ENV.items():  # never reach a hub at run time
            os.environ.setdefault(key, value)
        no_progress_bars()
        from rlint.checkpoints import verify_checkpoint

        if loads_model(args.command, getattr(args, "round", None), params):  # the architecture check imports transformers (and torch): only where a model loads
            for model_dir in checkpoints_read(args.command, getattr(args, "round", None), params, root):
                if model_dir.exists():  # a missing one is reported by the stage, after its other inputs
                    verify_checkpoint(model_dir)  # before any work, the architecture too: a bad model directory is bad input, not a crash
        module = importlib.import_module(f"rlint.stages.{args.command}")
        log_work_start(args.command, getattr(args, "round", None))
        if args.command == "bootstrap":
            module.run(params, root)
        else:
            module.run(params, args.round, root)
    except (ConfigError, DataError, CheckpointError, EngineError, TaskInputError) as err:
        return refuse(args.command, err)
    return 0


def seconds_since_process_start() -> float | None:
    """Seconds since this process started: ``/proc/self/stat``'s start time (clock ticks since boot,
    10 ms) against ``CLOCK_BOOTTIME``, both monotonic; None where there is no /proc (not Linux). In a child of
    the stage host, since its client process started (``RLINT_CLIENT_STARTED``): the command's own start."""
    from rlint.stage_host import CLIENT_STARTED_ENV, process_start  # the standard library only

    started = float(os.environ[CLIENT_STARTED_ENV]) if os.environ.get(CLIENT_STARTED_ENV) else process_start()
    return None if started is None else time.clock_gettime(time.CLOCK_BOOTTIME) - started


def log_work_start(command: str, round_id: int | None) -> None:
    """The stage's start-up ends here, as the CLI calls ``rlint.stages.<command>.run``: interpreter,
    imports, parameter and input checks are behind (scripts/bench_stage_start.py reads this line)."""
    age = seconds_since_process_start()
    if age is not None:
        label = command if round_id is None else f"{command} --round {round_id}"
        logging.getLogger("rlint.cli").info("rlint %s: work starts %.3f s after process start", label, age)


TASK_STAGES = ("bootstrap", "rollout", "credit", "evaluate")  # stages that always load the task


# the round's stage outputs each stage reads (dvc.yaml's data deps: rlint/stage_graph.py)
STAGE_INPUTS = {s.name: s.round_inputs() for s in round_stages() if s.round_inputs()}


def check_inputs_early(command: str, round_id: int | None, params, root: Path) -> None:
    """What can be checked without torch: a dataset task's file, the model directories' files (not their
    architecture) and the upstream Parquet files that exist (a missing one is reported by the stage)."""
    from rlint.checkpoints import check_dataset_context, verify_checkpoint, vocab_size

    task = None
    if params.task.name == "dataset" and command in TASK_STAGES:
        from rlint.tasks import load_task

        task = load_task(params.task, params.limits)  # the stage loads it again (reference checks are cached)
    sizes = []
    for model_dir in checkpoints_read(command, round_id, params, root):
        if model_dir.exists():
            verify_checkpoint(model_dir, architecture=False)
            sizes.append(vocab_size(model_dir))
            if task is not None and command in ("rollout", "evaluate"):  # every problem of the split must fit the context
                check_dataset_context(task, "train" if command == "rollout" else "heldout", params, model_dir)
    from rlint import data

    data.VOCAB_SIZE = min((n for n in sizes if n), default=None)  # upstream token ids beyond it would index past the embedding
    for name in STAGE_INPUTS.get(command, ()):
        if data.dataset_path(root, name, round_id).exists():
            data.read_table(root, name, round_id)


def check_round(command: str, round_id: int | None, params) -> None:
    """A stage's ``--round`` must be a round of ``params.rounds`` (archive also takes 0, the empty base archive)."""
    from rlint.config import ConfigError

    if command == "bootstrap":
        return
    if round_id < (0 if command == "archive" else 1):
        raise ConfigError(f"--round {round_id}: rounds start at 1 (round 0 is bootstrap)")
    ids = sorted(item["id"] for item in params.rounds.values())
    if round_id > 0 and round_id not in ids:
        listed = f"1..{ids[-1]}" if ids else "none"
        raise ConfigError(f"--round {round_id}: not a round of params.rounds (listed: {listed}); `rlint add-round` appends the next one")


def refuse(command: str, err: Exception) -> int:
    """The one exit path for bad input: one line on stderr, exit code 2 (flows/rounds.py does not retry it)."""
    message = " ".join(str(err).split()) or type(err).__name__
    limit = 460  # with the "rlint <command>: error: " prefix, under 500 characters
    print(f"rlint {command}: error: {message if len(message) <= limit else message[: limit - 1] + '…'}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
