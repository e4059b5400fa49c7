"""Helpers shared by stage commands: paths, metrics files, seeding, atomic directories."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from rlint.atomic import atomic_directory, write_json_atomic  # noqa: F401 - re-exported for the stages
from rlint.checkpoints import checkpoint_path  # noqa: F401 - re-exported for the stages


def metrics_path(root: str | Path, stage: str, round_id: int) -> Path:
    return Path(root) / "metrics" / stage / f"round={round_id}.json"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def check_context(task, problems, contexts: list[list[int]], max_new_tokens: int, model_dir: Path, max_model_len: int | None = None) -> None:
    """Refuse a problem whose prompt plus ``sampling.max_new_tokens`` does not fit the model's context, before sampling.

    ``contexts[i]`` holds the token ids of ``problems[i]``'s prompt; the context is config.json's
    ``max_position_embeddings`` (and ``sampling.vllm.max_model_len`` when set).
    """
    from rlint.checkpoints import context_length
    from rlint.tasks.base import TaskInputError

    limits = [n for n in (context_length(model_dir), max_model_len) if n]
    if not limits:
        return
    limit = min(limits)
    where = getattr(task, "path", None) or f"task {task.name!r}"
    for problem, ids in zip(problems, contexts):
        if len(ids) + max_new_tokens > limit:
            raise TaskInputError(f"{where}: problem {problem.problem_id!r:.40}: its prompt of {len(ids)} tokens + sampling.max_new_tokens="
                                 f"{max_new_tokens} do not fit the model's context of {limit} tokens; shorten the question or lower "
                                 "sampling.max_new_tokens")
