"""Helpers shared by stage commands: paths, metrics files, seeding, atomic directories."""

from __future__ import annotations

import random
from pathlib import Path

from rlint.atomic import atomic_directory, write_json_atomic  # noqa: F401 - re-exported for the stages
from rlint.checkpoints import check_context, checkpoint_path  # noqa: F401 - re-exported for the stages


def metrics_path(root: str | Path, stage: str, round_id: int) -> Path:
    return Path(root) / "metrics" / stage / f"round={round_id}.json"


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's generators (imported here: archive and credit need no torch)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)

