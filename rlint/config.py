"""Typed configuration: one dataclass per stage, read from ``params.yaml``.

Every field has a default and a one-line comment; ``__post_init__`` checks rules between
fields. Unknown keys and wrong types are errors that name the key, because a misspelt
parameter that is silently ignored ruins a run.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from rlint.mining import SEARCHES
from rlint.launch import LaunchConfig
from rlint.params_file import ConfigError, ParamsFileError, missing_tracked_keys, read_params_file, short, tracked_keys
from rlint.tasks.base import DEFAULT_REPAIR_TEMPLATE, TaskInputError, check_repair_template

STRATEGIES = ("search", "repair")

MODES = ("outcome", "internalized", "oracle")
ENGINES = ("auto", "vllm", "transformers")
VLLM_DTYPES = ("auto", "float32", "bfloat16", "float16")
LR_SCHEDULES = ("constant", "linear", "cosine")
MIXED_PRECISIONS = ("no", "bf16", "fp16")
OLD_LOGPROBS = ("sampler", "recompute")
# names rlint/losses.py registers (it refuses any other): listed here so that checking params imports no torch
POLICY_LOSSES = ("clipped", "ratio")
AGGREGATIONS = ("token_mean", "seq_mean")


def check_prompt_template(template: str, error=None) -> None:
    """``template`` may only use ``{question}``, bare: no other field, index, conversion or format spec
    (``{question:>1000000000}`` would build a gigabyte per prompt)."""
    import string

    error = error or ConfigError
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise error(f"task.prompt_template={short(template)}: {err}") from None
    if not fields or any(field != ("question", "", None) for field in fields):
        raise error(f"task.prompt_template={short(template)}: use {{question}} (no other field, conversion or format spec)")


@dataclass(frozen=True)
class TaskConfig:
    name: str = "arithmetic"  # "arithmetic" (embedded) or "dataset" (a local Parquet/JSONL file)
    seed: int = 0  # arithmetic: generator seed; dataset: seed of the train/held-out split
    min_steps: int = 3  # arithmetic: operations per problem, inclusive range
    max_steps: int = 5
    operand_max: int = 9  # arithmetic: operands are 1..operand_max
    value_max: int = 99  # arithmetic: intermediate values stay in 0..value_max
    operators: str = "+-*"  # arithmetic: subset of "+-*"
    modulus: int | None = None  # arithmetic: every written value is reduced modulo this, multipliers coprime to it (value_max unused); None: off
    heldout_share: float = 0.2  # share of problems held out for evaluation
    path: str | None = None  # dataset: Parquet or JSONL file of problems
    question_field: str = "question"  # dataset: column holding the problem text
    answer_field: str = "answer"  # dataset: column holding the reference answer
    id_field: str | None = None  # dataset: column of unique ids (default: row number)
    prompt_template: str = "{question}\n"  # dataset: how a question becomes a prompt
    step_delimiter: str = "\n"  # dataset: text that ends a step
    heldout_path: str | None = None  # dataset: a separate evaluation file in the same format (None: heldout_share of task.path)
    merge_empty_steps: bool | None = None  # a blank step (only whitespace before its delimiter) joins the step before it; None: on for datasets, off for arithmetic
    repair_template: str = DEFAULT_REPAIR_TEMPLATE  # dataset, mine.strategy repair: the repair prompt, with {question} and {attempt}
    repair_chat: bool = False  # dataset: wrap the repair prompt in the model's chat template (the tokenizer must have one)
    chat_template: bool = False  # dataset: wrap every prompt in the model's own chat template (an instruct model; the tokenizer must have one)
    system_prompt: str | None = None  # dataset, chat_template: a system message before each prompt (None: none)

    def __post_init__(self) -> None:
        if self.name not in ("arithmetic", "dataset"):
            raise ConfigError(f"task.name={self.name!r}: use 'arithmetic' or 'dataset'")
        if self.name == "dataset" and not self.path:
            raise ConfigError("task.path: required when task.name is 'dataset'")
        if not self.step_delimiter:
            raise ConfigError("task.step_delimiter: must not be empty")
        check_prompt_template(self.prompt_template)
        try:
            check_repair_template(self.repair_template)
        except TaskInputError as err:
            raise ConfigError(str(err)) from None
        if (self.chat_template or self.system_prompt is not None) and self.name != "dataset":
            raise ConfigError("task.chat_template, task.system_prompt: only for task.name 'dataset' (the embedded tokenizer has no chat template)")
        if self.system_prompt is not None and not self.chat_template:
            raise ConfigError("task.system_prompt: needs task.chat_template: true (a system message exists only in a chat template)")
        if self.repair_chat and self.name != "dataset":
            raise ConfigError("task.repair_chat: only for task.name 'dataset' (the embedded tokenizer has no chat template)")
        if self.name == "arithmetic":
            self.arithmetic()  # its checks, before anything is written (a dataset ignores the arithmetic keys, as it ignores value_max)

    def arithmetic(self):
        """The embedded task's own config (rlint/tasks/arithmetic.py); its refusals become ConfigErrors naming the key."""
        from rlint.tasks.arithmetic import ArithmeticConfig

        try:
            return ArithmeticConfig(seed=self.seed, min_steps=self.min_steps, max_steps=self.max_steps, operand_max=self.operand_max,
                                    value_max=self.value_max, operators=self.operators, heldout_share=self.heldout_share, modulus=self.modulus)
        except TaskInputError as err:
            raise ConfigError(str(err)) from None


@dataclass(frozen=True)
class BootstrapConfig:
    model_path: str | None = None  # a local Hugging Face model directory to start from; None trains the embedded model
    hidden_size: int = 128  # embedded model: width
    intermediate_size: int = 512  # embedded model: MLP width
    layers: int = 4  # embedded model: decoder layers
    heads: int = 4  # embedded model: attention heads
    max_length: int = 128  # embedded model: context length in tokens
    steps: int = 500  # supervised steps on worked solutions
    train_problems: int = 20000  # worked solutions drawn from the train split
    faithful_share: float = 0.0  # share of the train problems that also give a solution going on faithfully from one injected wrong line
    repair_share: float = 0.0  # share of the train problems that also give a repair lesson (a wrong attempt, the marker, the minimally edited solution)
    batch_size: int = 64  # sequences per supervised step
    lr: float = 3e-3  # learning rate (50 warm-up steps, then constant)
    eval_problems: int = 1000  # held-out problems scored (greedy) after training
    diagnostic_prompts: int = 64  # held-out problems sampled rollout.samples_per_prompt times at sampling.temperature for the base diagnostics (0: off; tasks with a step checker)

    def __post_init__(self) -> None:
        if self.hidden_size % self.heads:
            raise ConfigError(f"bootstrap.hidden_size={self.hidden_size} must be divisible by bootstrap.heads={self.heads}")
        for name in ("steps", "batch_size", "layers", "heads", "eval_problems", "train_problems", "hidden_size", "intermediate_size", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"bootstrap.{name} must be >= 1")
        if self.diagnostic_prompts < 0:
            raise ConfigError("bootstrap.diagnostic_prompts must be >= 0")
        if self.lr <= 0:
            raise ConfigError("bootstrap.lr must be > 0")
        if not 0.0 <= self.faithful_share <= 1.0:
            raise ConfigError(f"bootstrap.faithful_share={self.faithful_share}: must be in [0, 1]")
        if not 0.0 <= self.repair_share <= 1.0:
            raise ConfigError(f"bootstrap.repair_share={self.repair_share}: must be in [0, 1]")


@dataclass(frozen=True)
class VLLMConfig:
    tensor_parallel_size: int = 1  # GPUs the model is sharded over (1 on a CPU)
    data_parallel_size: int = 1  # replicas, one process each on its own tensor_parallel_size GPUs (on a CPU: its share of the cores); prompts split between them
    gpu_memory_utilization: float = 0.3  # share of GPU memory vLLM may take; on a CPU, of host memory (KV cache included)
    max_model_len: int | None = None  # context limit in tokens (prompt + completion); None: the model's own
    dtype: str = "auto"  # weights and activations: "auto" (the checkpoint's), "float32", "bfloat16", "float16"
    enforce_eager: bool = True  # skip torch.compile / CUDA graphs: fast start, slower steps
    cpu_threads_bind: str = "auto"  # vLLM on a CPU: the cores its OpenMP threads are bound to (VLLM_CPU_OMP_THREADS_BIND): auto, nobind, or ids "0-3,6"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"auto|nobind|\d+(-\d+)?(,\d+(-\d+)?)*(\|\d+(-\d+)?(,\d+(-\d+)?)*)*", self.cpu_threads_bind):
            raise ConfigError(f"sampling.vllm.cpu_threads_bind={short(self.cpu_threads_bind)}: use auto, nobind, or CPU ids like '0-3,6' "
                              "(one list per tensor-parallel rank, joined by '|')")
        if self.tensor_parallel_size < 1 or self.data_parallel_size < 1:
            raise ConfigError("sampling.vllm.tensor_parallel_size and sampling.vllm.data_parallel_size must be >= 1")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("sampling.vllm.gpu_memory_utilization must be in (0, 1]")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ConfigError("sampling.vllm.max_model_len must be >= 2 or null")
        if self.dtype not in VLLM_DTYPES:
            raise ConfigError(f"sampling.vllm.dtype={self.dtype!r}: use one of {', '.join(VLLM_DTYPES)}")


@dataclass(frozen=True)
class SamplingConfig:
    engine: str = "auto"  # "vllm", "transformers", or "auto" (vllm when it is installed, else transformers)
    temperature: float = 1.0  # sampling temperature of rollout, mine and correct
    top_p: float = 1.0  # nucleus sampling
    max_new_tokens: int = 64  # completion length limit in tokens
    batch_size: int = 256  # transformers engine: sequences per generate call (vLLM schedules its own batches)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)  # vLLM engine settings

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"sampling.engine={self.engine!r}: available engines are {', '.join(ENGINES)}")
        if self.temperature <= 0:
            raise ConfigError("sampling.temperature must be > 0 (use evaluate.temperature for greedy)")
        if not 0 < self.top_p <= 1:
            raise ConfigError("sampling.top_p must be in (0, 1]")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("sampling.max_new_tokens and sampling.batch_size must be >= 1")


@dataclass(frozen=True)
class RolloutConfig:
    prompts_per_round: int = 32  # training problems per round
    samples_per_prompt: int = 8  # group size G

    def __post_init__(self) -> None:
        if self.prompts_per_round < 1 or self.samples_per_prompt < 2:
            raise ConfigError("rollout.prompts_per_round must be >= 1 and rollout.samples_per_prompt >= 2")


@dataclass(frozen=True)
class MineConfig:
    continuations_per_probe: int = 2  # M: continuations sampled to estimate one prefix value
    value_threshold: float = 0.0  # a prefix whose estimated value is <= this is "not recoverable"
    max_failures: int | None = None  # mine at most this many failures per round (None: all)
    failures_per_problem: int | None = 1  # mine at most this many failures of each problem, in rollout order (None: all)
    search: str = "binary"  # "binary" over steps; "linear" (scan to the first bad step) or "full" (every step), for comparison
    temperature: float = 1.0  # sampling temperature of the value-probe continuations and of repair attempts
    strategy: str = "search"  # identify strategy: "search" (mine.search over prefix values) or "repair" (the policy repairs its failures)
    repair_samples: int = 4  # repair: attempts per failure; the verified one with the smallest edit is kept
    repair_max_edit: float = 0.5  # repair: largest edit size (changed tokens / failed tokens) a repair may have; above it, a rewrite

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"mine.strategy={self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        if self.repair_samples < 1:
            raise ConfigError("mine.repair_samples must be >= 1")
        if not 0.0 < self.repair_max_edit <= 1.0:
            raise ConfigError(f"mine.repair_max_edit={self.repair_max_edit}: must be in (0, 1]")
        if self.continuations_per_probe < 1:
            raise ConfigError("mine.continuations_per_probe must be >= 1")
        if self.failures_per_problem is not None and self.failures_per_problem < 0:
            raise ConfigError("mine.failures_per_problem must be >= 0 (or null: all)")
        if not 0.0 <= self.value_threshold < 1.0:
            raise ConfigError("mine.value_threshold must be in [0, 1)")
        if self.temperature <= 0:
            raise ConfigError("mine.temperature must be > 0")
        if self.search not in SEARCHES:
            raise ConfigError(f"mine.search={self.search!r}: use one of {', '.join(SEARCHES)}")
        if self.max_failures is not None and self.max_failures < 0:
            raise ConfigError("mine.max_failures must be >= 0 (or null: all)")


@dataclass(frozen=True)
class CorrectConfig:
    max_samples: int = 2  # extra continuations per failure when none from mining succeeded
    max_branches: int = 2  # corrected branches kept per failure

    def __post_init__(self) -> None:
        if self.max_samples < 0 or self.max_branches < 1:
            raise ConfigError("correct.max_samples must be >= 0 and correct.max_branches >= 1")


@dataclass(frozen=True)
class ArchiveConfig:
    replay_share: float = 0.125  # share of each round's prompts that restart from open archive entries
    max_replays: int = 3  # an entry not solved after this many replays is retired

    def __post_init__(self) -> None:
        if not 0.0 <= self.replay_share < 1.0:
            raise ConfigError("archive.replay_share must be in [0, 1)")
        if self.max_replays < 1:
            raise ConfigError("archive.max_replays must be >= 1")


@dataclass(frozen=True)
class CreditConfig:
    estimator: str = "internalized"  # advantage estimator by name: grpo | drgrpo | internalized | info_gain (rlint/credit.py)
    process_weight: float = 1.0  # lambda: weight of the process advantage against the outcome one
    after_error_weight: float = 0.0  # internalized: weight of tokens after the first error (0 masks them)
    branch_weight: float = 1.0  # internalized: scale of corrected-branch advantages
    continuation_weight: float = 1.0  # internalized: scale of the advantages of mining continuations from good prefixes (0: not trained)
    unchanged_weight: float = 0.0  # repair_diff: weight of a repaired failure's tokens the repair left unchanged (0: not penalised)
    repair_unchanged_weight: float = 1.0  # repair_diff: weight of a repair's unchanged tokens (its changed ones have weight 1)
    repairer_weight: float = 0.0  # repair_diff: scale of the repairer's own credit, every repair attempt trained in the repair context (0: off)
    epsilon: float = 1e-6  # added to the group std
    group_std: str = "population"  # population (divide by n) | sample (divide by n - 1, TRL's GRPOTrainer)
    answer_text: str | None = None  # info_gain: how the reference answer is written after the steps ("{answer}" is replaced); None: the task's own
    score_batch_size: int = 64  # info_gain: sequences per teacher-forced scoring pass

    def __post_init__(self) -> None:
        from rlint.credit import ESTIMATORS

        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"credit.estimator={self.estimator!r}: use one of {', '.join(ESTIMATORS)}")
        if not 0.0 <= self.process_weight <= 1.0:
            raise ConfigError("credit.process_weight must be in [0, 1]")
        weights = ("after_error_weight", "branch_weight", "continuation_weight", "unchanged_weight", "repair_unchanged_weight", "repairer_weight")
        for name in weights:
            if not getattr(self, name) >= 0:
                raise ConfigError(f"credit.{name}={getattr(self, name)}: must be >= 0")
        if self.answer_text is not None and "{answer}" not in self.answer_text:
            raise ConfigError(f"credit.answer_text={self.answer_text!r}: must contain {{answer}}")
        if self.score_batch_size < 1:
            raise ConfigError("credit.score_batch_size must be >= 1")
        if self.group_std not in ("population", "sample"):
            raise ConfigError(f"credit.group_std={self.group_std!r}: use population or sample")
        if not self.epsilon > 0:
            raise ConfigError("credit.epsilon must be > 0")


@dataclass(frozen=True)
class OptimizeConfig:
    loss: str = "clipped"  # policy loss by name: clipped | ratio (rlint/losses.py)
    aggregation: str = "token_mean"  # token_mean (every trained token counts once) | seq_mean (every sequence counts once)
    lr: float = 1e-4  # AdamW peak learning rate
    lr_schedule: str = "constant"  # constant | linear | cosine (decay to 0 over the round), after warmup_steps
    warmup_steps: int = 0  # linear warm-up from 0, in optimizer steps
    epochs: int = 2  # passes over the round's train set
    minibatch_size: int = 64  # sequences per optimizer step, over all processes
    micro_batch_size: int = 64  # sequences per forward/backward on one process; gradients accumulate up to minibatch_size
    clip_low: float = 0.2  # ratio clipped below at 1 - clip_low
    clip_high: float = 0.28  # ratio clipped above at 1 + clip_high
    kl_coef: float = 0.0  # weight of the k3 KL penalty to the base policy checkpoints/round=0 (0: off)
    sft_weight: float = 0.0  # weight of the supervised loss on train-set rows whose sft flag is set (0: off)
    max_grad_norm: float = 1.0  # gradient clipping (global L2 norm)
    weight_decay: float = 0.0
    mixed_precision: str = "no"  # no | bf16 | fp16 (fp16 needs a GPU), passed to the Accelerator
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, more time
    carry_optimizer_state: bool = True  # AdamW's moments carried from round k-1 to k (checkpoints/round=k/optimizer/); false: a fresh AdamW each round
    reshuffle_epochs: bool = False  # a new minibatch order every epoch; false: one seeded order, the same minibatches each epoch (TRL's)
    old_logprobs: str = "sampler"  # the ratio's old policy: sampler (the sampling log-probs) | recompute (a trainer forward pass before the update)
    launch: LaunchConfig = field(default_factory=LaunchConfig)  # processes and machines that train (rlint/launch.py); not a DVC param: it does not change the update

    def __post_init__(self) -> None:
        if self.loss not in POLICY_LOSSES:
            raise ConfigError(f"optimize.loss={self.loss!r}: use one of {', '.join(POLICY_LOSSES)}")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"optimize.aggregation={self.aggregation!r}: use one of {', '.join(AGGREGATIONS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"optimize.lr_schedule={self.lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ConfigError(f"optimize.mixed_precision={self.mixed_precision!r}: use one of {', '.join(MIXED_PRECISIONS)}")
        if self.lr <= 0 or self.epochs < 1 or self.minibatch_size < 1 or self.micro_batch_size < 1:
            raise ConfigError("optimize.lr must be > 0, optimize.epochs, optimize.minibatch_size and optimize.micro_batch_size >= 1")
        if self.warmup_steps < 0:
            raise ConfigError("optimize.warmup_steps must be >= 0")
        if not (0 < self.clip_low < 1 and self.clip_high > 0):
            raise ConfigError("optimize.clip_low must be in (0, 1) and optimize.clip_high > 0")
        if self.kl_coef < 0 or self.sft_weight < 0 or self.max_grad_norm <= 0:
            raise ConfigError("optimize.kl_coef and optimize.sft_weight must be >= 0, optimize.max_grad_norm > 0")
        if self.old_logprobs not in OLD_LOGPROBS:
            raise ConfigError(f"optimize.old_logprobs={self.old_logprobs!r}: use one of {', '.join(OLD_LOGPROBS)}")


@dataclass(frozen=True)
class EvaluateConfig:
    problems: int = 1000  # held-out problems per evaluation (standard error of an accuracy near 0.5: 0.016)
    temperature: float = 0.0  # 0 is greedy decoding

    def __post_init__(self) -> None:
        if self.problems < 1 or self.temperature < 0:
            raise ConfigError("evaluate.problems must be >= 1 and evaluate.temperature >= 0")


@dataclass(frozen=True)
class LimitsConfig:
    """Sizes checked up front, before any work: a refusal names the limit to raise. DVC does not track
    this section (a limit changes what is accepted, never what a stage writes)."""

    max_rows_per_round: int = 100_000  # rollouts per round (rollout.prompts_per_round * rollout.samples_per_prompt) and evaluate.problems
    max_file_bytes: int = 200_000_000  # dataset: size of task.path
    max_question_chars: int = 20_000  # dataset: characters of one question
    max_answer_chars: int = 200  # dataset: characters of one reference answer (a longer one cannot be scored)

    def __post_init__(self) -> None:
        for name in ("max_rows_per_round", "max_file_bytes", "max_question_chars", "max_answer_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"limits.{name} must be >= 1")
        if self.max_answer_chars > 200:
            raise ConfigError(f"limits.max_answer_chars={self.max_answer_chars}: the verifier reads answers of at most 200 characters "
                              "(rlint/tasks/math_answer.py MAX_ANSWER_CHARS), so a longer reference could never be scored")


@dataclass(frozen=True)
class Params:
    seed: int = 0  # seeds every stage (combined with the round number)
    mode: str = "internalized"  # "outcome" (GRPO), "internalized" (the method) or "oracle" (ground-truth first errors; with mine.strategy repair, the oracle repair)
    task: TaskConfig = field(default_factory=TaskConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    mine: MineConfig = field(default_factory=MineConfig)
    correct: CorrectConfig = field(default_factory=CorrectConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    credit: CreditConfig = field(default_factory=CreditConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    inputs: dict = field(default_factory=dict)  # DVC foreach items: the paths task.path, task.heldout_path, bootstrap.model_path name (rlint/inputs.py)
    rounds: dict = field(default_factory=dict)  # DVC foreach items: r<k>: {id: k, prev: k-1}

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r}: use one of {', '.join(MODES)}")
        if self.mode == "oracle" and self.task.name != "arithmetic":
            raise ConfigError("mode='oracle' needs a task with a ground-truth step checker (task.name: arithmetic)")
        from rlint.credit import ESTIMATORS

        if self.mode != "outcome" and not ESTIMATORS[self.credit.estimator].uses_mining:
            raise ConfigError(f"credit.estimator={self.credit.estimator!r} ignores mined failures and corrected branches, so mode={self.mode!r} "
                              "would mine for nothing: set mode: outcome, or credit.estimator: internalized")
        # mode oracle with strategy repair is the oracle repair (rlint/stages/repair.py): credited like a self-repair
        if self.mode in ("internalized", "oracle") and self.mine.strategy == "repair" and self.credit.estimator != "repair_diff":
            raise ConfigError(f"mine.strategy='repair' with credit.estimator={self.credit.estimator!r} (mode={self.mode!r}): repairs are "
                              "credited by their token difference, set credit.estimator: repair_diff")
        # what a weight trains was sampled at mine.temperature; the optimize loss is at sampling.temperature
        for name, trained in (("continuation_weight", "mining continuations"), ("repairer_weight", "repair attempts")):
            if getattr(self.credit, name) > 0 and self.mine.temperature != self.sampling.temperature:
                raise ConfigError(f"credit.{name}={getattr(self.credit, name)} trains {trained}, sampled at "
                                  f"mine.temperature={self.mine.temperature}, with a loss at sampling.temperature={self.sampling.temperature}: "
                                  f"make the two equal, or set credit.{name}: 0")
        if self.credit.repairer_weight > 0 and self.mode == "internalized" and self.mine.strategy != "repair":
            raise ConfigError(f"credit.repairer_weight={self.credit.repairer_weight} trains repair attempts, but mine.strategy="
                              f"{self.mine.strategy!r} makes none: set mine.strategy: repair, or credit.repairer_weight: 0")
        if self.task.name == "arithmetic":
            self._check_chain_fits()
        rows = self.rollout.prompts_per_round * self.rollout.samples_per_prompt
        if max(rows, self.evaluate.problems) > self.limits.max_rows_per_round:
            what = (f"rollout.prompts_per_round * rollout.samples_per_prompt = {rows} rollouts" if rows > self.evaluate.problems
                    else f"evaluate.problems = {self.evaluate.problems}")
            raise ConfigError(f"{what} per round, more than limits.max_rows_per_round={self.limits.max_rows_per_round}: "
                              "lower it, or raise limits.max_rows_per_round if the machine holds it")
        for key, item in self.rounds.items():
            if not isinstance(item, dict) or set(item) != {"id", "prev"}:
                raise ConfigError(f"rounds.{key}: must be a mapping with exactly 'id' and 'prev'")
            if not all(type(item[name]) is int for name in ("id", "prev")):
                raise ConfigError(f"rounds.{key}: 'id' and 'prev' must be integers, got {item}")
            if item["prev"] != item["id"] - 1 or key != f"r{item['id']}":
                raise ConfigError(f"rounds.{key}: expected r<k>: {{id: k, prev: k-1}}, got {item}")
        ids = sorted(item["id"] for item in self.rounds.values())
        if ids != list(range(1, len(ids) + 1)):
            raise ConfigError(f"rounds: ids must be 1, 2, ... without gaps (each round reads the previous one's checkpoint), got {ids}")

    def check_inputs(self) -> None:
        """``inputs`` must list exactly the paths that task.path, task.heldout_path and bootstrap.model_path name: DVC hashes
        what ``inputs`` lists (stage input@<key>), so a path missing there would be read without being versioned.
        (:func:`load_params` checks it where a dvc.yaml beside params.yaml iterates over ``inputs``.)"""
        from rlint.inputs import INPUT_KEYS, declared_inputs, inputs_yaml

        declared = declared_inputs(self.task.path, self.task.heldout_path, self.bootstrap.model_path)
        if self.inputs == declared:
            return
        wrong = next((k for k in declared if self.inputs.get(k) != declared[k]), None)
        if wrong is not None:
            why = f"inputs.{wrong} must be {short(declared[wrong])}, the path {wrong} names"
        else:
            extra = next(k for k in self.inputs if k not in declared)
            why = (f"inputs.{extra}: {extra} is not set" if extra in INPUT_KEYS
                   else f"inputs.{short(extra)}: not a parameter that names a path ({', '.join(INPUT_KEYS)})")
        raise ConfigError(f"{why}: DVC versions by content only what inputs lists (rlint/inputs.py); write {inputs_yaml(declared)}")

    def _check_chain_fits(self) -> None:
        """Prompt and longest solution of the embedded task (one character per token) must fit the embedded model's context, and
        so must a repair (its prompt holds the failed attempt) where repairs are taught or sampled.

        (A ``sampling.max_new_tokens`` below the longest solution is allowed: those samples are cut and score as unfinished.)"""
        from rlint.tasks.arithmetic import REPAIR_MARKER

        arithmetic = self.task.arithmetic()
        completion, prompt = arithmetic.completion_chars() + 1, arithmetic.prompt_chars()  # + 1: end of sequence
        if self.bootstrap.model_path is None and prompt + completion > self.bootstrap.max_length:
            raise ConfigError(f"task.max_steps={self.task.max_steps}: prompt and solution take up to {prompt + completion} tokens, more than "
                              f"the embedded model's context bootstrap.max_length={self.bootstrap.max_length}: raise it or shorten the chains")
        # a repair prompt holds the problem, the failed attempt and the marker; the repair follows it
        repair = prompt + (completion - 1) + len(REPAIR_MARKER) + completion
        repairs = self.mine.strategy == "repair" or self.bootstrap.repair_share > 0
        if self.bootstrap.model_path is None and repairs and repair > self.bootstrap.max_length:
            raise ConfigError(f"bootstrap.max_length={self.bootstrap.max_length}: a repair of the longest chain (task.max_steps={self.task.max_steps}) "
                              f"takes up to {repair} tokens with its prompt (mine.strategy: repair, bootstrap.repair_share): raise it to at least {repair}")


def _coerce(value, annotation, where: str):
    """Check ``value`` against a field annotation; ints are accepted where floats are expected."""
    hint = annotation
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(a for a in options if a is not type(None))
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {short(value)}")
    if hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return value
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {short(value)}")
    return value


def _build(cls, raw: dict, where: str):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where + ': ' if where else ''}unknown key(s) {', '.join(k[:40] for k in unknown[:5])}; known: {', '.join(sorted(known))}")
    values = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in raw.items()}
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(f"{where or 'params'}: {err}") from None


MAX_MESSAGE_CHARS = 480  # a refusal is one line a person reads: values in it are cut (rlint/params_file.short)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; every error names the file and the key.

    The file is read by :func:`rlint.params_file.read_params_file` (no duplicate keys, aliases,
    empty file or non-mapping top level), and every key ``dvc.yaml`` beside it tracks must be
    written out: DVC reads those from the file, not from rlint's defaults. Imports no torch.
    """
    path = Path(path)
    try:
        raw = read_params_file(path)
        missing: dict[str, str] = {}  # key -> the first stage that tracks it
        for stage, key in missing_tracked_keys(path, raw):
            missing.setdefault(key, stage)
        if missing:
            (key, stage), others = next(iter(missing.items())), list(missing)[1:]
            default = _default(key)
            raise ConfigError(f"{key}: missing, but dvc.yaml stage {stage!r} tracks it (DVC reads it from this file, not from rlint's "
                              f"defaults){'; its default: ' + key + ': ' + short(default) if default is not _NO_DEFAULT else ''}"
                              f"{'; also missing: ' + ', '.join(others[:5]) + (', …' if len(others) > 5 else '') if others else ''}")
        params = _build(Params, raw, "")
        if path.name == "params.yaml" and any(key == "inputs" for _, key in tracked_keys(path.parent / "dvc.yaml")):
            params.check_inputs()
        return params
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a parameters file"
    except OSError as err:
        message = f"cannot be read: {err.strerror or type(err).__name__}"
    except (ParamsFileError, ConfigError) as err:
        message = str(err)
    message = " ".join(f"{path}: {message}".split())
    raise ConfigError(message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…") from None


_NO_DEFAULT = object()


def _default(dotted: str):
    """rlint's default for a dotted key (``sampling.max_new_tokens``), or _NO_DEFAULT."""
    node = Params()
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            return _NO_DEFAULT
        node = getattr(node, part)
    return dataclasses.asdict(node) if dataclasses.is_dataclass(node) else node


def round_seed(params: Params, round_id: int, stage: str) -> int:
    """A distinct, stable seed per (run seed, round, stage)."""
    return (params.seed * 1_000_003 + round_id * 1009 + sum(map(ord, stage)) * 7) % (2**31 - 1)
