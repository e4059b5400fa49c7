"""The problems (``task``) and the base model (``bootstrap``)."""

from __future__ import annotations

import string

from pydantic import Field, model_validator

from rlint.config.base import Section
from rlint.config.names import TASKS
from rlint.params_file import ConfigError, short
from rlint.tasks.base import DEFAULT_REPAIR_TEMPLATE, TaskInputError, check_repair_template


def check_prompt_template(template: str, error=None) -> None:
    """``template`` may only use ``{question}``, bare: no other field, index, conversion or format spec
    (``{question:>1000000000}`` would build a gigabyte per prompt)."""
    error = error or ConfigError
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise error(f"task.prompt_template={short(template)}: {err}") from None
    if not fields or any(field != ("question", "", None) for field in fields):
        raise error(f"task.prompt_template={short(template)}: use {{question}} (no other field, conversion or format spec)")


class TaskConfig(Section):
    section = "task"
    name: str = Field("arithmetic", description="arithmetic (embedded) | dataset (task.path: a local Parquet/JSONL file)")
    seed: int = Field(0, description="arithmetic: generator seed; dataset: seed of the train/held-out split")
    min_steps: int = Field(3, description="arithmetic: operations per problem, inclusive range")
    max_steps: int = Field(5, description="arithmetic: most operations per problem")
    operand_max: int = Field(9, description="arithmetic: operands are 1..operand_max")
    value_max: int = Field(99, description="arithmetic: intermediate values stay in 0..value_max")
    operators: str = Field("+-*", description='arithmetic: subset of "+-*"')
    modulus: int | None = Field(None, description="arithmetic: every written value reduced modulo this, multipliers coprime to it (value_max unused); null: off")
    heldout_share: float = Field(0.2, description="share of problems held out for evaluation")
    path: str | None = Field(None, description="dataset: Parquet or JSONL file of problems")
    question_field: str = Field("question", description="dataset: column holding the problem text")
    answer_field: str = Field("answer", description="dataset: column holding the reference answer")
    id_field: str | None = Field(None, description="dataset: column of unique ids (null: row number)")
    prompt_template: str = Field("{question}\n", description="dataset: how a question becomes a prompt (only {question}, bare)")
    step_delimiter: str = Field("\n", description="dataset: text that ends a step (not empty)")
    heldout_path: str | None = Field(None, description="dataset: a separate evaluation file in the same format; null: heldout_share of task.path")
    merge_empty_steps: bool | None = Field(None, description="a blank step joins the step before it; null: on for datasets, off for arithmetic")
    repair_template: str = Field(DEFAULT_REPAIR_TEMPLATE, description="dataset, mine.strategy repair: the repair prompt, with {question} and {attempt}")
    repair_chat: bool = Field(False, description="dataset: wrap the repair prompt in the model's chat template (the tokenizer must have one)")
    chat_template: bool = Field(False, description="dataset: wrap every prompt in the model's own chat template (an instruct model)")
    system_prompt: str | None = Field(None, description="dataset, chat_template: a system message before each prompt; null: none")

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        if self.name not in TASKS:
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
        return self

    def arithmetic(self):
        """The embedded task's own config (rlint/tasks/arithmetic.py, pure Python); its refusals become ConfigErrors naming the key."""
        from rlint.tasks.arithmetic import ArithmeticConfig

        try:
            return ArithmeticConfig(seed=self.seed, min_steps=self.min_steps, max_steps=self.max_steps, operand_max=self.operand_max,
                                    value_max=self.value_max, operators=self.operators, heldout_share=self.heldout_share, modulus=self.modulus)
        except TaskInputError as err:
            raise ConfigError(str(err)) from None


class BootstrapConfig(Section):
    section = "bootstrap"
    model_path: str | None = Field(None, description="a local Hugging Face model directory to start from; null trains the embedded model")
    hidden_size: int = Field(128, ge=1, description="embedded model: width (a multiple of heads)")
    intermediate_size: int = Field(512, ge=1, description="embedded model: MLP width")
    layers: int = Field(4, ge=1, description="embedded model: decoder layers")
    heads: int = Field(4, ge=1, description="embedded model: attention heads")
    max_length: int = Field(128, ge=1, description="embedded model: context in tokens (a repair prompt holds the failed attempt)")
    steps: int = Field(500, ge=1, description="supervised steps on worked solutions")
    train_problems: int = Field(20000, ge=1, description="worked solutions drawn from the train split")
    faithful_share: float = Field(0.0, ge=0, le=1, description="share of the train problems that also teach going on faithfully from one injected wrong line")
    repair_share: float = Field(0.0, ge=0, le=1, description="share of the train problems that also teach repairing a wrong attempt (the marker, the minimally edited solution)")
    batch_size: int = Field(64, ge=1, description="sequences per supervised step")
    lr: float = Field(3e-3, gt=0, description="learning rate (50 warm-up steps, then constant)")
    eval_problems: int = Field(1000, ge=1, description="held-out problems scored greedily after training")
    diagnostic_prompts: int = Field(64, ge=0, description="held-out problems sampled rollout.samples_per_prompt times at sampling.temperature for the base diagnostics (0: off)")

    @model_validator(mode="after")
    def _check(self) -> BootstrapConfig:
        if self.hidden_size % self.heads:
            raise ConfigError(f"bootstrap.hidden_size={self.hidden_size} must be divisible by bootstrap.heads={self.heads}")
        return self
