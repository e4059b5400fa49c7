"""The checkpoint a round writes: a Hugging Face model directory (safetensors) with ``rlint.json``
and, when it is carried, the AdamW state (rlint/optimizer_state.py); written atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator

from rlint.atomic import atomic_directory
from rlint.optimizer_state import copy_optimizer_state, save_optimizer_state


def save_checkpoint(accelerator: Accelerator, model, tokenizer, path: Path, extra: dict,
                    optimizer: torch.optim.Optimizer | None = None, optimizer_from: Path | None = None) -> None:
    """A Hugging Face model directory (safetensors), written atomically by the main process, with
    ``optimizer``'s state (or a copy of the one stored in checkpoint ``optimizer_from``) in its ``optimizer/`` folder.
    Every process must call it: under FSDP the full state dict is gathered from all of them."""
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        with atomic_directory(path) as tmp:
            accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            (tmp / "rlint.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")
            if optimizer is not None:
                save_optimizer_state(optimizer, tmp)
            elif optimizer_from is not None:
                copy_optimizer_state(optimizer_from, tmp)
    accelerator.wait_for_everyone()


def carry_over_checkpoint(previous: Path, path: Path, extra: dict, with_optimizer_state: bool) -> None:
    """Round ``k``'s checkpoint when there is nothing to learn: round k-1's files copied as they are
    (the optimizer state too, when it is carried), with this round's ``rlint.json``; written atomically."""
    with atomic_directory(path) as tmp:
        for item in sorted(Path(previous).iterdir()):
            if item.is_file() and item.name != "rlint.json":
                shutil.copyfile(item, tmp / item.name)
        if with_optimizer_state:
            copy_optimizer_state(previous, tmp)
        (tmp / "rlint.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")
