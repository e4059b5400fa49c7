"""The stage graph, once: each DVC stage's command, data inputs, outputs and tracked parameters.

The CLI's sub-commands, the flows, the benchmarks, the scripts and the tests read this table;
dvc.yaml is written by hand for its readers, and tests/test_stage_graph.py fails when it and
the table disagree (its code deps are generated from the import graph: rlint/stage_deps.py).

Paths are patterns: ``{round}`` is the round k a stage runs for, ``{prev}`` round k-1 (dvc.yaml's
``${item.id}`` and ``${item.prev}``); ``{key}`` and ``{item}`` are an input's key and path. This module
imports the standard library only (the CLI reads it before any check).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage of dvc.yaml: ``rlint <command> <args>``, run by ``rlint.stages.<command>``."""

    name: str  # dvc.yaml's stage name
    command: str  # the rlint sub-command
    args: str = ""  # its arguments, a pattern
    over: str | None = None  # dvc.yaml's foreach: "rounds" (one stage per round), "inputs" or None
    inputs: tuple[str, ...] = ()  # data deps (code deps: rlint/stage_deps.py)
    outputs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()  # always uncached
    params: tuple[str, ...] = ()  # params.yaml sections or dotted keys DVC tracks
    cache: bool = True  # whether DVC caches the outputs

    @property
    def module(self) -> str:
        return f"rlint.stages.{self.command}"

    @property
    def per_round(self) -> bool:
        return self.over == "rounds"

    @property
    def cmd(self) -> str:
        """The command line pattern, e.g. ``rlint mine --round {round}``."""
        return f"rlint {self.command} {self.args}".rstrip()

    def round_inputs(self) -> tuple[str, ...]:
        """The outputs of its own round it reads (``data/<name>/round={round}``), by dataset name.

        >>> stage("credit").round_inputs()
        ('rollouts', 'failures', 'branches', 'continuations')
        """
        return tuple(p.split("/")[1] for p in self.inputs if p.startswith("data/") and p.endswith("/round={round}"))


def _round(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], params: tuple[str, ...]) -> Stage:
    return Stage(name, name, "--round {round}", "rounds", inputs, outputs, (f"metrics/{name}/round={{round}}.json",), params)


TASK = "data/inputs"  # the content records of params.yaml's inputs (dataset files, a model folder)
POLICY = "checkpoints/round={prev}"  # the policy the round samples from

STAGES = (
    Stage("input", "input", "--key {key}", "inputs", ("{item}",), ("data/inputs/{key}.json",), cache=False),
    Stage("bootstrap", "bootstrap", inputs=(TASK,), outputs=("checkpoints/round=0",), metrics=("metrics/evaluate/round=0.json",), cache=False,
          params=("seed", "task", "bootstrap", "sampling.max_new_tokens", "sampling.temperature", "sampling.top_p", "sampling.engine",
                  "sampling.batch_size", "sampling.vllm", "rollout.samples_per_prompt")),
    Stage("archive_base", "archive", "--round 0", outputs=("data/archive/round=0",)),  # the empty archive round 1 starts from
    _round("rollout", (TASK, POLICY, "data/archive/round={prev}"), ("data/rollouts/round={round}",),
           ("seed", "task", "sampling", "rollout", "mode", "archive.replay_share")),
    _round("mine", (TASK, "data/rollouts/round={round}", POLICY), ("data/failures/round={round}", "data/continuations/round={round}"),
           ("seed", "mode", "task", "sampling", "mine")),
    _round("correct", (TASK, "data/rollouts/round={round}", "data/failures/round={round}", "data/continuations/round={round}", POLICY),
           ("data/branches/round={round}", "data/corrections/round={round}"), ("seed", "task", "sampling", "correct")),
    _round("archive", ("data/archive/round={prev}", "data/rollouts/round={round}", "data/failures/round={round}", "data/corrections/round={round}"),
           ("data/archive/round={round}",), ("mode", "archive.max_replays")),
    _round("credit", (TASK, "data/rollouts/round={round}", "data/failures/round={round}", "data/branches/round={round}", "data/continuations/round={round}",
                      POLICY), ("data/train_set/round={round}",), ("mode", "task", "sampling.temperature", "credit")),
    _round("optimize", ("data/train_set/round={round}", POLICY, "checkpoints/round=0"), ("checkpoints/round={round}",),
           ("seed", "mode", "sampling.temperature", *(f"optimize.{key}" for key in (
               "loss", "aggregation", "lr", "lr_schedule", "warmup_steps", "epochs", "minibatch_size", "micro_batch_size", "clip_low", "clip_high",
               "kl_coef", "sft_weight", "max_grad_norm", "weight_decay", "mixed_precision", "gradient_checkpointing", "carry_optimizer_state",
               "reshuffle_epochs", "old_logprobs")))),  # not optimize.launch: processes and machines do not change the update
    _round("evaluate", (TASK, "checkpoints/round={round}"), ("data/eval/round={round}",), ("task", "sampling", "evaluate")),
)
ROUND_STAGES = tuple(s.name for s in STAGES if s.per_round)  # one round, in order (rlint/round.py)
BASE_STAGES = ("bootstrap", "archive_base")  # before round 1, after the inputs' records
COMMANDS = ("bootstrap", *ROUND_STAGES)  # the rlint sub-commands that run a training stage (``input`` is a tool: rlint/cli.py's TOOLS)


def stage(name: str) -> Stage:
    """The stage called ``name`` in dvc.yaml.

    >>> stage("mine").cmd, stage("archive_base").module
    ('rlint mine --round {round}', 'rlint.stages.archive')
    """
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r} (rlint/stage_graph.py: {', '.join(s.name for s in STAGES)})")


def round_stages() -> tuple[Stage, ...]:
    """The stages of one round, in the order they run.

    >>> [s.name for s in round_stages()]
    ['rollout', 'mine', 'correct', 'archive', 'credit', 'optimize', 'evaluate']
    """
    return tuple(stage(name) for name in ROUND_STAGES)


def dvc_path(pattern: str) -> str:
    """A pattern in dvc.yaml's spelling.

    >>> dvc_path("data/archive/round={prev}"), dvc_path("data/inputs/{key}.json")
    ('data/archive/round=${item.prev}', 'data/inputs/${key}.json')
    """
    return pattern.format(round="${item.id}", prev="${item.prev}", key="${key}", item="${item}")
