"""Credit and the update: ``credit``, ``optimize`` (with ``optimize.launch``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from rlint.config.base import Section
from rlint.config.names import AGGREGATIONS, ESTIMATORS, GROUP_STDS, LR_SCHEDULES, MIXED_PRECISIONS, OLD_LOGPROBS, POLICY_LOSSES
from rlint.params_file import ConfigError


class LaunchError(ConfigError):
    """``optimize.launch`` cannot start: the message names the key."""


def check_name(key: str, value: str, names: tuple) -> None:
    if value not in names:
        raise ConfigError(f"{key}={value!r}: use one of {', '.join(names)}")


class CreditConfig(Section):
    section = "credit"
    estimator: str = Field("internalized", description="advantage estimator (rlint/credit.py): grpo | drgrpo | internalized | info_gain | repair_diff; grpo, drgrpo, info_gain need mode: outcome")
    process_weight: float = Field(1.0, ge=0, le=1, description="lambda: weight of the process advantage against the outcome one")
    after_error_weight: float = Field(0.0, ge=0, description="internalized: weight of tokens after the first error (0 masks them)")
    branch_weight: float = Field(1.0, ge=0, description="internalized: scale of corrected-branch advantages")
    continuation_weight: float = Field(1.0, ge=0, description="internalized: mining continuations from good prefixes trained with weight * (reward - V(prefix)) (0: off)")
    unchanged_weight: float = Field(0.0, ge=0, description="repair_diff: weight of a repaired failure's tokens the repair left unchanged (0: not penalised)")
    repair_unchanged_weight: float = Field(1.0, ge=0, description="repair_diff: weight of a repair's unchanged tokens (its changed ones have weight 1)")
    repairer_weight: float = Field(0.0, ge=0, description="repair_diff: every repair attempt also trained in the repair context, group-normalised (verified +, failed -); 0: off")
    epsilon: float = Field(1e-6, gt=0, description="added to the group std")
    group_std: str = Field("population", description="population (divide by n) | sample (divide by n - 1, TRL's GRPOTrainer)")
    answer_text: str | None = Field(None, description='info_gain: how the reference answer is written after the steps ("{answer}" is replaced); null: the task\'s own')
    score_batch_size: int = Field(64, ge=1, description="info_gain: sequences per teacher-forced scoring pass")

    @model_validator(mode="after")
    def _check(self) -> CreditConfig:
        check_name("credit.estimator", self.estimator, ESTIMATORS)
        if self.answer_text is not None and "{answer}" not in self.answer_text:
            raise ConfigError(f"credit.answer_text={self.answer_text!r}: must contain {{answer}}")
        if self.group_std not in GROUP_STDS:
            raise ConfigError(f"credit.group_std={self.group_std!r}: use population or sample")
        return self


class LaunchConfig(Section):
    """Processes and machines that train (rlint/launch.py, docs/scaling.md); not tracked by DVC: they do not change the update."""

    section = "optimize.launch"
    error = LaunchError
    num_processes: int = Field(1, ge=1, description="training processes over all machines (one per GPU; on a CPU, gloo processes); > 1: torchrun, or accelerate launch with config_file")
    num_machines: int = Field(1, ge=1, description="machines taking part; each runs num_processes / num_machines processes")
    machine_rank: int = Field(0, description="this machine's rank, 0 = the main one, up to num_machines - 1; per machine: --machine-rank or RLINT_MACHINE_RANK")
    main_process_ip: str = Field("127.0.0.1", description="address of machine 0, where the processes meet")
    main_process_port: int = Field(29500, ge=1, le=65535, description="port on machine 0 for the rendezvous")
    config_file: str | None = Field(None, description="an Accelerate config (configs/accelerate/*.yaml) run by `accelerate launch`; null: torchrun (DDP, gloo on a CPU)")
    connect_timeout: float = Field(120.0, gt=0, description="seconds a machine of rank > 0 waits for machine 0's port before it gives up")

    @model_validator(mode="after")
    def _check(self) -> LaunchConfig:
        if self.num_processes % self.num_machines:
            raise LaunchError(f"optimize.launch.num_processes={self.num_processes} is not a multiple of "
                              f"optimize.launch.num_machines={self.num_machines} (the same number of processes on each machine)")
        if not 0 <= self.machine_rank < self.num_machines:
            raise LaunchError(f"optimize.launch.machine_rank={self.machine_rank}: use 0 to num_machines - 1 ({self.num_machines - 1})")
        if not self.main_process_ip.strip():
            raise LaunchError("optimize.launch.main_process_ip is empty")
        return self

    @property
    def processes_per_machine(self) -> int:
        return self.num_processes // self.num_machines

    @property
    def single_process(self) -> bool:
        return self.num_processes == 1 and self.config_file is None


class OptimizeConfig(Section):
    section = "optimize"
    loss: str = Field("clipped", description="policy loss by name: clipped | ratio (rlint/losses.py)")
    aggregation: str = Field("token_mean", description="token_mean (every trained token counts once) | seq_mean (every sequence counts once)")
    lr: float = Field(1e-4, gt=0, description="AdamW peak learning rate")
    lr_schedule: str = Field("constant", description="constant | linear | cosine (decay to 0 over the round), after warmup_steps")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0, in optimizer steps")
    epochs: int = Field(2, ge=1, description="passes over the round's train set")
    minibatch_size: int = Field(64, ge=1, description="sequences per optimizer step, over all processes")
    micro_batch_size: int = Field(64, ge=1, description="sequences per forward/backward on one process; gradients accumulate up to minibatch_size")
    clip_low: float = Field(0.2, gt=0, lt=1, description="ratio clipped below at 1 - clip_low")
    clip_high: float = Field(0.28, gt=0, description="ratio clipped above at 1 + clip_high")
    kl_coef: float = Field(0.0, ge=0, description="weight of the k3 KL penalty to the base policy checkpoints/round=0 (0: off)")
    sft_weight: float = Field(0.0, ge=0, description="weight of the supervised loss on format-gated, verified train-set rows (the sft flag); 0: off")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping (global L2 norm)")
    weight_decay: float = Field(0.0, description="AdamW weight decay")
    mixed_precision: str = Field("no", description="no | bf16 | fp16 (fp16 needs a GPU), passed to the Accelerator")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward: less memory, more time")
    carry_optimizer_state: bool = Field(True, description="AdamW's moments carried from round k-1 to k (checkpoints/round=k/optimizer/); false: a fresh AdamW each round")
    reshuffle_epochs: bool = Field(False, description="a new minibatch order every epoch; false: one seeded order, the same minibatches each epoch (TRL's)")
    old_logprobs: str = Field("sampler", description="the ratio's old policy: sampler (the sampling log-probs) | recompute (a trainer forward pass before the update, TRL's)")
    launch: LaunchConfig = Field(default_factory=LaunchConfig, description="processes and machines that train (docs/scaling.md)")

    @model_validator(mode="after")
    def _check(self) -> OptimizeConfig:
        for key, names in (("loss", POLICY_LOSSES), ("aggregation", AGGREGATIONS), ("lr_schedule", LR_SCHEDULES), ("mixed_precision", MIXED_PRECISIONS),
                           ("old_logprobs", OLD_LOGPROBS)):
            check_name(f"optimize.{key}", getattr(self, key), names)
        return self
