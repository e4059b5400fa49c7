"""Policy losses: pure functions over per-token tensors."""

from __future__ import annotations

import torch


def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, weights: torch.Tensor,
                        clip_low: float, clip_high: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO clipped surrogate (Schulman et al. 2017) with separate lower and upper clip ranges.

    All inputs are (B, T); ``weights`` is 0 on padding and masked tokens. Per token
    ``l = -min(r * A, clip(r, 1 - clip_low, 1 + clip_high) * A)`` with ``r = exp(logprobs -
    old_logprobs)``; the loss is the weighted token mean ``sum(w * l) / sum(w)``.
    Returns the scalar loss and detached statistics (clip fraction, mean ratio).
    """
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)  # (B, T)
    per_token = -torch.minimum(ratio * advantages, clipped * advantages)  # (B, T)
    total = weights.sum().clamp_min(1e-8)
    loss = (per_token * weights).sum() / total
    with torch.no_grad():
        active = (weights > 0).float()
        was_clipped = ((ratio < 1.0 - clip_low) & (advantages < 0)) | ((ratio > 1.0 + clip_high) & (advantages > 0))
        stats = {
            "clip_fraction": (was_clipped.float() * active).sum() / active.sum().clamp_min(1.0),
            "ratio_mean": (ratio * active).sum() / active.sum().clamp_min(1.0),
        }
    return loss, stats


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of ``targets`` (B, T) under ``logits / temperature`` (B, T, V) -> (B, T)."""
    return torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
