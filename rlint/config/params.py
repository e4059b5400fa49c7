"""The whole of ``params.yaml``: :class:`Params`, its sections, and the rules between sections."""

from __future__ import annotations

from pydantic import Field, model_validator

from rlint.config.base import Section
from rlint.config.names import ESTIMATORS_USING_MINING, MODES
from rlint.config.sampling import ArchiveConfig, CorrectConfig, EvaluateConfig, MineConfig, RolloutConfig, SamplingConfig
from rlint.config.task import BootstrapConfig, TaskConfig
from rlint.config.training import CreditConfig, OptimizeConfig
from rlint.params_file import ConfigError, short


class LimitsConfig(Section):
    """Sizes checked up front, before any work: a refusal names the limit to raise. DVC does not track
    this section (a limit changes what is accepted, never what a stage writes)."""

    section = "limits"
    max_rows_per_round: int = Field(100_000, ge=1, description="rollouts per round (rollout.prompts_per_round * rollout.samples_per_prompt), and evaluate.problems")
    max_file_bytes: int = Field(200_000_000, ge=1, description="dataset: size of task.path")
    max_question_chars: int = Field(20_000, ge=1, description="dataset: characters of one question")
    max_answer_chars: int = Field(200, ge=1, description="dataset: characters of one reference answer, at most 200 (the verifier reads no longer ones)")

    @model_validator(mode="after")
    def _check(self) -> LimitsConfig:
        if self.max_answer_chars > 200:
            raise ConfigError(f"limits.max_answer_chars={self.max_answer_chars}: the verifier reads answers of at most 200 characters "
                              "(rlint/tasks/math_answer.py MAX_ANSWER_CHARS), so a longer reference could never be scored")
        return self


class Params(Section):
    seed: int = Field(0, description="seeds every stage (combined with the round number)")
    mode: str = Field("internalized", description="outcome (plain GRPO) | internalized (the method) | oracle (ground-truth first errors; with mine.strategy repair: the oracle repair)")
    task: TaskConfig = Field(default_factory=TaskConfig, description="the problems")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig, description="the base model")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="how the policy samples")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="the round's samples")
    mine: MineConfig = Field(default_factory=MineConfig, description="locating first errors")
    correct: CorrectConfig = Field(default_factory=CorrectConfig, description="corrected branches")
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig, description="hard failures as restart points for later rounds")
    credit: CreditConfig = Field(default_factory=CreditConfig, description="advantages")
    optimize: OptimizeConfig = Field(default_factory=OptimizeConfig, description="the policy update")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="held-out accuracy")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="sizes refused up front")
    inputs: dict = Field(default_factory=dict, description="DVC foreach items: the paths task.path, task.heldout_path, bootstrap.model_path name, under those keys (rlint/inputs.py)")
    rounds: dict = Field(default_factory=dict, description="DVC foreach items: r<k>: {id: k, prev: k-1}; `rlint add-round` appends the next one")

    @model_validator(mode="after")
    def _check(self) -> Params:
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r}: use one of {', '.join(MODES)}")
        if self.mode == "oracle" and self.task.name != "arithmetic":
            raise ConfigError("mode='oracle' needs a task with a ground-truth step checker (task.name: arithmetic)")
        if self.mode != "outcome" and self.credit.estimator not in ESTIMATORS_USING_MINING:
            raise ConfigError(f"credit.estimator={self.credit.estimator!r} ignores mined failures and corrected branches, so mode={self.mode!r} "
                              "would mine for nothing: set mode: outcome, or credit.estimator: internalized")
        # mode oracle with strategy repair is the oracle repair (rlint/identify/repair.py): credited like a self-repair
        if self.mode in ("internalized", "oracle") and self.mine.strategy == "repair" and self.credit.estimator != "repair_diff":
            raise ConfigError(f"mine.strategy='repair' with credit.estimator={self.credit.estimator!r} (mode={self.mode!r}): repairs are "
                              "credited by their token difference, set credit.estimator: repair_diff")
        # what a weight trains was sampled at the mine temperature of its kind; the optimize loss is at sampling.temperature
        # (search makes the mining continuations, repair the attempts: a weight on what the strategy does not make is inert)
        name, what, temperature = {"search": ("continuation_weight", "mining continuations", "temperature"),
                                   "repair": ("repairer_weight", "repair attempts", "repair_temperature")}[self.mine.strategy]
        if getattr(self.credit, name) > 0 and getattr(self.mine, temperature) != self.sampling.temperature:
            raise ConfigError(f"credit.{name}={getattr(self.credit, name)} trains {what}, sampled at "
                              f"mine.{temperature}={getattr(self.mine, temperature)}, with a loss at sampling.temperature={self.sampling.temperature}: "
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
        self._check_rounds()
        return self

    def _check_rounds(self) -> None:
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
