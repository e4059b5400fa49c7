"""Rollout engines: one interface, several backends."""

from __future__ import annotations

from rlint.engine.base import RolloutEngine, Sample, SamplingRequest


def load_engine(checkpoint: str, sampling) -> RolloutEngine:
    """The engine named by ``sampling.engine`` with the checkpoint loaded once."""
    if sampling.engine == "transformers":
        from rlint.engine.hf import TransformersEngine
        from rlint.policy import load_policy

        model, tokenizer = load_policy(checkpoint)
        return TransformersEngine(model, tokenizer, batch_size=sampling.batch_size)
    raise ValueError(f"sampling.engine={sampling.engine!r}: unknown engine")


__all__ = ["RolloutEngine", "Sample", "SamplingRequest", "load_engine"]
