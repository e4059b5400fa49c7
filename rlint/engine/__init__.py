"""Rollout engines: one interface, several backends (vLLM, transformers)."""

from __future__ import annotations

import logging

from rlint.engine.base import RolloutEngine, Sample, SamplingRequest

log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """The configured engine cannot run here (e.g. ``sampling.engine: vllm`` without vLLM)."""


# sampling.engine: auto on a CPU picks vLLM from this many parameters up. Measured (docs/engines.md, scripts/bench_engines.py,
# 2 cores): vLLM generated 0.73x the tokens per second of transformers on the embedded 1.05 M model and 2.20x on a 27.3 M one;
# the crossover lies between them, and 8 M is a round figure there (not measured at 8 M itself).
AUTO_VLLM_MIN_PARAMETERS_ON_CPU = 8_000_000


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def engine_name(engine: str, checkpoint: str | None = None) -> str:
    """The backend ``sampling.engine`` resolves to here. ``auto``: transformers without vLLM; vLLM on a GPU; on a CPU,
    vLLM for a ``checkpoint`` of at least ``AUTO_VLLM_MIN_PARAMETERS_ON_CPU`` parameters (or of unknown size), else transformers."""
    from rlint.engine.vllm import vllm_available

    if engine == "auto":
        if not vllm_available():
            return "transformers"
        if checkpoint is None or _on_gpu():
            return "vllm"
        from rlint.checkpoints import parameter_count

        count = parameter_count(checkpoint)
        return "vllm" if count is None or count >= AUTO_VLLM_MIN_PARAMETERS_ON_CPU else "transformers"
    if engine == "vllm" and not vllm_available():
        raise EngineError("sampling.engine=vllm: vLLM is not installed (`make install` installs it unless VLLM=0; or use auto/transformers)")
    return engine


def load_engine(checkpoint: str, sampling) -> RolloutEngine:
    """The engine named by ``sampling.engine`` with the checkpoint loaded once."""
    name = engine_name(sampling.engine, checkpoint)
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
