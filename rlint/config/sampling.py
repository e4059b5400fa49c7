"""Sampling and what samples: ``sampling`` (with ``sampling.vllm``), ``rollout``, ``mine``, ``correct``, ``archive``, ``evaluate``."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from rlint.config.base import Section
from rlint.config.names import ENGINES, SEARCHES, STRATEGIES, VLLM_DTYPES
from rlint.params_file import ConfigError, short

CPU_THREADS_BIND = re.compile(r"auto|nobind|\d+(-\d+)?(,\d+(-\d+)?)*(\|\d+(-\d+)?(,\d+(-\d+)?)*)*")


class VLLMConfig(Section):
    section = "sampling.vllm"
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs the model is sharded over (1 on a CPU)")
    data_parallel_size: int = Field(1, ge=1, description="replicas, one process each on its own GPUs (on a CPU: its share of the cores); docs/scaling.md")
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="share of GPU memory vLLM may take; on a CPU, of host memory (weights + KV cache)")
    max_model_len: int | None = Field(None, ge=2, description="context limit in tokens (prompt + completion); null: the model's max_position_embeddings")
    dtype: str = Field("auto", description="auto (the checkpoint's) | float32 | bfloat16 | float16")
    enforce_eager: bool = Field(True, description="no torch.compile / CUDA graphs: fast start, slower steps")
    cpu_threads_bind: str = Field("auto", description='on a CPU: cores for vLLM\'s threads (it ignores OMP_NUM_THREADS): auto | nobind | ids "0-3,6" (ranks joined by "|")')

    @model_validator(mode="after")
    def _check(self) -> VLLMConfig:
        if not CPU_THREADS_BIND.fullmatch(self.cpu_threads_bind):
            raise ConfigError(f"sampling.vllm.cpu_threads_bind={short(self.cpu_threads_bind)}: use auto, nobind, or CPU ids like '0-3,6' "
                              "(one list per tensor-parallel rank, joined by '|')")
        if self.dtype not in VLLM_DTYPES:
            raise ConfigError(f"sampling.vllm.dtype={self.dtype!r}: use one of {', '.join(VLLM_DTYPES)}")
        return self


class SamplingConfig(Section):
    section = "sampling"
    engine: str = Field("auto", description="vllm | transformers | auto (vLLM where installed, on a GPU or from 8 M parameters on a CPU; else transformers)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of rollout, mine and correct (evaluate.temperature for greedy)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling")
    max_new_tokens: int = Field(64, ge=1, description="completion length limit in tokens")
    batch_size: int = Field(256, ge=1, description="transformers engine: sequences per generate call (vLLM schedules its own batches)")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig, description="vLLM engine settings")

    @model_validator(mode="after")
    def _check(self) -> SamplingConfig:
        if self.engine not in ENGINES:
            raise ConfigError(f"sampling.engine={self.engine!r}: available engines are {', '.join(ENGINES)}")
        return self


class RolloutConfig(Section):
    section = "rollout"
    prompts_per_round: int = Field(32, ge=1, description="training problems per round")
    samples_per_prompt: int = Field(8, ge=2, description="group size G")


class MineConfig(Section):
    section = "mine"
    continuations_per_probe: int = Field(2, ge=1, description="M: continuations sampled to estimate one prefix value")
    value_threshold: float = Field(0.0, ge=0, lt=1, description='a prefix whose estimated value is <= this is "not recoverable"')
    max_failures: int | None = Field(None, ge=0, description="mine at most this many failures per round; null: all")
    failures_per_problem: int | None = Field(1, ge=0, description="mine at most this many failures of each problem, in rollout order (null: all); the rest keep the outcome advantage")
    search: str = Field("binary", description="binary (over steps) | linear (scan to the first bad step) | full (every step); the last two for comparison")
    temperature: float = Field(1.0, gt=0, description="search: temperature of the value-probe continuations")
    strategy: str = Field("search", description="search (mine.search over prefix values) | repair (the policy repairs its failures; oracle: the reference chain); needs credit.estimator: repair_diff")
    repair_temperature: float = Field(0.1, gt=0, description="repair: temperature of the repair attempts (near greedy: 3.7x fewer tokens per located failure than 1.0; docs/method.md)")
    repair_samples: int = Field(1, ge=1, description="repair: attempts per failure; the verified one with the smallest edit is kept")
    repair_max_edit: float = Field(1.0, gt=0, le=1, description="repair: largest edit size (changed tokens / failed tokens) a repair may have; above it, a rewrite")

    @model_validator(mode="after")
    def _check(self) -> MineConfig:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"mine.strategy={self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        if self.search not in SEARCHES:
            raise ConfigError(f"mine.search={self.search!r}: use one of {', '.join(SEARCHES)}")
        return self


class CorrectConfig(Section):
    section = "correct"
    max_samples: int = Field(2, ge=0, description="extra continuations per failure when none from mining succeeded")
    max_branches: int = Field(2, ge=1, description="corrected branches kept per failure")


class ArchiveConfig(Section):
    section = "archive"
    replay_share: float = Field(0.125, ge=0, lt=1, description="share of each round's prompts restarted from open archive entries (hard failures: uncorrected or unlocated); 0: off")
    max_replays: int = Field(3, ge=1, description="an entry still unsolved after this many replays is retired")


class EvaluateConfig(Section):
    section = "evaluate"
    problems: int = Field(1000, ge=1, description="held-out problems per evaluation (standard error of an accuracy near 0.5: 0.016)")
    temperature: float = Field(0.0, ge=0, description="0 is greedy decoding")
