"""Helpers shared by stage commands: paths, metrics files, seeding, atomic directories."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from rlint.atomic import atomic_directory, write_json_atomic  # noqa: F401 - re-exported for the stages


def checkpoint_path(root: str | Path, round_id: int) -> Path:
    """Policy after round ``round_id`` (round 0: the base policy from bootstrap)."""
    return Path(root) / "checkpoints" / f"round={round_id}"


def metrics_path(root: str | Path, stage: str, round_id: int) -> Path:
    return Path(root) / "metrics" / stage / f"round={round_id}.json"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
