"""Rollout engines: one interface, several backends (vLLM, transformers)."""

from __future__ import annotations

import logging

from rlint.engine.base import RolloutEngine, Sample, SamplingRequest

log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """The configured engine cannot run here (e.g. ``sampling.engine: vllm`` without vLLM)."""


def engine_name(engine: str) -> str:
    """The backend ``sampling.engine`` resolves to here: ``auto`` is vllm when it is installed."""
    from rlint.engine.vllm import vllm_available

    if engine == "auto":
        return "vllm" if vllm_available() else "transformers"
    if engine == "vllm" and not vllm_available():
        raise EngineError("sampling.engine=vllm: vLLM is not installed (`make install` installs it unless VLLM=0; or use auto/transformers)")
    return engine


def load_engine(checkpoint: str, sampling) -> RolloutEngine:
    """The engine named by ``sampling.engine`` with the checkpoint loaded once."""
    name = engine_name(sampling.engine)
    log.info("rollout engine: %s (sampling.engine=%s)", name, sampling.engine)
    if name == "vllm":
        from rlint.engine.vllm import VLLMEngine

        return VLLMEngine(checkpoint, sampling.vllm)
    if name == "transformers":
        from rlint.engine.hf import TransformersEngine
        from rlint.policy import load_policy

        model, tokenizer = load_policy(checkpoint)
        return TransformersEngine(model, tokenizer, batch_size=sampling.batch_size)
    raise ValueError(f"sampling.engine={sampling.engine!r}: unknown engine")


__all__ = ["EngineError", "RolloutEngine", "Sample", "SamplingRequest", "engine_name", "load_engine"]
