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
        from rlint.engine.served import ServedEngine, served_for

        url = served_for(checkpoint)
        if url is not None:  # the flow's shared server for this very checkpoint (rlint/engine/served.py)
            return ServedEngine(checkpoint, url)
    if name == "vllm" and sampling.vllm.data_parallel_size > 1:
        from rlint.engine.vllm_dp import DataParallelVLLM

        return DataParallelVLLM(checkpoint, sampling.vllm)
    if name == "vllm":
        from rlint.engine.vllm import VLLMEngine

        return VLLMEngine(checkpoint, sampling.vllm)
    if name == "transformers":
        from rlint.engine.hf import TransformersEngine
        from rlint.policy import load_policy

        model, tokenizer = load_policy(checkpoint)
        return TransformersEngine(model, tokenizer, batch_size=sampling.batch_size)
    raise ValueError(f"sampling.engine={sampling.engine!r}: unknown engine")


class LazyEngine:
    """An engine started on first use: a stage whose work turns out to need no sampling (every
    failure decided without it) starts none. Any attribute (``generate``, ``tokenizer``, ``encode``...)
    loads :func:`load_engine` once; ``started`` says whether that happened."""

    def __init__(self, checkpoint: str, sampling) -> None:
        self.checkpoint = checkpoint  # read without starting the engine (e.g. to load only its tokenizer)
        self._args = (checkpoint, sampling)
        self._engine: RolloutEngine | None = None

    @property
    def started(self) -> bool:
        return self._engine is not None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._engine is None:
            self._engine = load_engine(*self._args)
        return getattr(self._engine, name)


__all__ = ["EngineError", "LazyEngine", "RolloutEngine", "Sample", "SamplingRequest", "engine_name", "load_engine"]
