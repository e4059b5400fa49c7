"""AdamW's state carried from one round's checkpoint to the next (``optimize.carry_optimizer_state``).

The state lives beside the model, in ``checkpoints/round=k/optimizer/state.safetensors``: part of
the round's checkpoint, so it is a DVC output, versioned and reproducible with it. It sits in a
subfolder because vLLM loads every ``*.safetensors`` file at the top of a model directory.

Only the per-parameter tensors are stored (``step``, ``exp_avg``, ``exp_avg_sq``, keyed
``state.<index>.<name>`` in the order of ``model.parameters()``); the hyper-parameters (learning
rate, betas, weight decay) always come from the current ``params.yaml``. A state whose parameter
count or shapes do not match the model is refused: it belongs to another model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_DIR = "optimizer"
STATE_FILE = "state.safetensors"


class OptimizerStateError(ValueError):
    """The stored optimizer state does not fit the model being trained; the message names the file."""


def state_path(checkpoint: Path) -> Path:
    return Path(checkpoint) / STATE_DIR / STATE_FILE


def flatten_state(state_dict: dict) -> dict[str, torch.Tensor]:
    """``torch.optim`` state dict -> flat ``{"state.<index>.<name>": tensor}`` (contiguous CPU copies)."""
    flat = {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            flat[f"state.{index}.{name}"] = tensor.detach().to("cpu").contiguous().clone()
    return flat


def unflatten_state(flat: dict[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    """The inverse of :func:`flatten_state`: ``{index: {name: tensor}}``."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    return state


def copy_optimizer_state(source: Path, checkpoint: Path) -> bool:
    """Copy the state stored in checkpoint ``source`` (if any) into ``checkpoint``; whether there was one."""
    if not state_path(source).exists():
        return False
    state_path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(state_path(source), state_path(checkpoint))
    return True


def save_optimizer_state(optimizer: torch.optim.Optimizer, checkpoint: Path) -> Path:
    """Write ``optimizer``'s per-parameter state into ``checkpoint/optimizer/`` (the caller writes the checkpoint atomically)."""
    path = state_path(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(flatten_state(optimizer.state_dict()), str(path), metadata={"format": "rlint-adamw-v1"})
    return path


def load_optimizer_state(optimizer: torch.optim.Optimizer, checkpoint: Path) -> bool:
    """Load the state stored in ``checkpoint`` into ``optimizer`` (hyper-parameters unchanged). False when none is stored."""
    path = state_path(checkpoint)
    if not path.exists():
        return False
    try:
        state = unflatten_state(load_file(str(path)))
    except Exception as err:  # safetensors raises its own error types for a foreign or truncated file
        raise OptimizerStateError(f"{path}: not a readable optimizer state: {str(err).splitlines()[0][:200]}") from None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if sorted(state) != list(range(len(params))):
        raise OptimizerStateError(f"{path}: state for {len(state)} parameters, the model has {len(params)}")
    for index, param in enumerate(params):
        for name, tensor in state[index].items():
            if name != "step" and tensor.shape != param.shape:
                raise OptimizerStateError(f"{path}: {name} of parameter {index} has shape {tuple(tensor.shape)}, the model's {tuple(param.shape)}")
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    return True
