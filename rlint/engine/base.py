"""The rollout engine interface, shared by every backend (transformers now, vLLM next).

An engine takes a batch of tokenized prompts and returns ``n`` samples per prompt, each with
its token ids and the log-probability of every sampled token under the sampling
distribution (logits divided by the temperature). Same prompts, same seed, same outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SamplingRequest:
    """What to sample: ``n`` completions for each of ``prompts`` (token id lists)."""

    prompts: list[list[int]]
    n: int = 1
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    stop_token_ids: tuple[int, ...] = ()  # generation ends after any of these (eos is always one)


@dataclass
class Sample:
    """One completion: tokens after the prompt (stop token included if one was emitted)."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" (a stop token) or "length"
    extra: dict = field(default_factory=dict)


class RolloutEngine(Protocol):
    eos_token_id: int

    def generate(self, request: SamplingRequest, desc: str = "") -> list[list[Sample]]:
        """``result[i][j]`` is sample j of prompt i; ``len(result) == len(request.prompts)``."""
        ...

    def decode(self, token_ids: list[int]) -> str: ...

    def encode(self, text: str) -> list[int]: ...
