"""Supervised training of the embedded base policy on worked solutions (the bootstrap stage).

Loss is next-token cross-entropy on the solution tokens only; the prompt is context.
"""

from __future__ import annotations

import logging
import time

import torch

log = logging.getLogger(__name__)


def pack_batch(prompts: list[list[int]], targets: list[list[int]], pad_id: int):
    """Right-padded ``(input_ids, labels, attention_mask)``, each ``(B, T)``; prompt labels are -100."""
    width = max(len(p) + len(t) for p, t in zip(prompts, targets))
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    labels = torch.full((len(prompts), width), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, (prompt, target) in enumerate(zip(prompts, targets)):
        sequence = prompt + target
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        labels[row, len(prompt): len(sequence)] = torch.tensor(target)
        attention_mask[row, : len(sequence)] = 1
    return input_ids, labels, attention_mask


def warmup_constant_lr(step: int, peak: float, warmup_steps: int = 50) -> float:
    """Linear warm-up, then constant: the model after N steps does not depend on the total
    number of steps, so a calibration run's step-N model is exactly a bootstrap with N steps."""
    return peak * min(1.0, (step + 1) / warmup_steps)


def train_sft(model, examples: list[tuple[list[int], list[int]]], pad_id: int, steps: int, batch_size: int, lr: float, seed: int, on_step=None) -> list[float]:
    """Train ``model`` in place on ``(prompt ids, target ids)`` pairs; returns the loss per step.

    Batches are drawn with a seeded generator, so the same arguments give the same weights.
    ``on_step(step, model)``, if given, is called after every step (calibration scripts use it).
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    model.train()
    losses, started = [], time.monotonic()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = warmup_constant_lr(step, lr)
        index = torch.randint(len(examples), (batch_size,), generator=generator).tolist()
        input_ids, labels, attention_mask = pack_batch([examples[i][0] for i in index], [examples[i][1] for i in index], pad_id)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, model)
        if (step + 1) % 50 == 0 or step + 1 == steps:
            log.info("bootstrap step %d/%d loss %.4f (%.0fs)", step + 1, steps, sum(losses[-50:]) / len(losses[-50:]), time.monotonic() - started)
    model.eval()
    return losses
