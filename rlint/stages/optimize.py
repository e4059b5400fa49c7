"""optimize: one clipped policy-gradient pass over the round's train set, through Accelerate.

The same command runs on one CPU, one GPU, or several processes under ``accelerate launch``
(the Accelerator picks up the launch configuration). Sampler log-probabilities are the old
policy; before the first update the trainer's own log-probabilities are computed once and
their mismatch with the sampler's is reported.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from rlint.config import Params, round_seed
from rlint.data import read_rows
from rlint.losses import clipped_policy_loss, token_logprobs
from rlint.policy import load_policy, save_policy
from rlint.stages.common import atomic_directory, checkpoint_path, metrics_path, seed_everything, write_json_atomic

log = logging.getLogger(__name__)


def collate(rows: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch. ``input_ids`` (B, L) is context + tokens; the per-token tensors (B, L-1)
    are aligned with the logits that predict position t+1, zero outside trained tokens."""
    width = max(len(r["context_token_ids"]) + len(r["token_ids"]) for r in rows)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
        "old_logprobs": torch.zeros((len(rows), width - 1)),
        "advantages": torch.zeros((len(rows), width - 1)),
        "weights": torch.zeros((len(rows), width - 1)),
    }
    for i, r in enumerate(rows):
        context, tokens = list(r["context_token_ids"]), list(r["token_ids"])
        n, start = len(context) + len(tokens), len(context) - 1
        batch["input_ids"][i, :n] = torch.tensor(context + tokens)
        batch["attention_mask"][i, :n] = 1
        batch["old_logprobs"][i, start:start + len(tokens)] = torch.tensor(r["logprobs"])
        batch["advantages"][i, start:start + len(tokens)] = torch.tensor(r["advantages"])
        batch["weights"][i, start:start + len(tokens)] = torch.tensor(r["loss_weights"])
    return batch


def policy_logprobs(model, batch: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]  # (B, L-1, V)
    return token_logprobs(logits, batch["input_ids"][:, 1:], temperature)  # (B, L-1)


def run(params: Params, round_id: int, root: Path) -> dict:
    cfg = params.optimize
    seed = round_seed(params, round_id, "optimize")
    seed_everything(seed)
    rows = read_rows(root, "train_set", round_id)
    rows = [r for r in rows if any(w > 0 for w in r["loss_weights"]) and r["token_ids"]]
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, tokenizer = load_policy(checkpoint_path(root, round_id - 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    temperature = params.sampling.temperature
    pad_id = tokenizer.pad_token_id
    started = time.monotonic()

    # sampler-versus-trainer log-probability mismatch, before any update
    model.eval()
    diffs, n_tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), cfg.minibatch_size):
            batch = {k: v.to(accelerator.device) for k, v in collate(rows[i:i + cfg.minibatch_size], pad_id).items()}
            mask = batch["weights"] > 0
            diffs += (policy_logprobs(model, batch, temperature) - batch["old_logprobs"]).abs()[mask].sum().item()
            n_tokens += int(mask.sum().item())

    model.train()
    generator = torch.Generator().manual_seed(seed)
    history = {"loss": [], "clip_fraction": [], "grad_norm": []}
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(rows), generator=generator).tolist()
        for i in range(0, len(order), cfg.minibatch_size):
            batch = {k: v.to(accelerator.device) for k, v in collate([rows[j] for j in order[i:i + cfg.minibatch_size]], pad_id).items()}
            loss, stats = clipped_policy_loss(policy_logprobs(model, batch, temperature), batch["old_logprobs"], batch["advantages"], batch["weights"], cfg.clip_low, cfg.clip_high)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            history["loss"].append(loss.item())
            history["clip_fraction"].append(stats["clip_fraction"].item())
            history["grad_norm"].append(float(grad_norm))
        log.info("optimize round %d epoch %d/%d loss %.4f", round_id, epoch + 1, cfg.epochs, sum(history["loss"][-10:]) / max(1, len(history["loss"][-10:])))

    target = checkpoint_path(root, round_id)
    if accelerator.is_main_process:
        with atomic_directory(target) as tmp:
            save_policy(accelerator.unwrap_model(model), tokenizer, tmp, {"origin": "optimize", "round": round_id, "seed": seed, "mode": params.mode})
    mean = lambda xs: round(sum(xs) / len(xs), 5) if xs else 0.0  # noqa: E731
    metrics = {
        "round": round_id,
        "examples": len(rows),
        "trained_tokens": n_tokens,
        "optimizer_steps": len(history["loss"]),
        "loss": mean(history["loss"]),
        "clip_fraction": mean(history["clip_fraction"]),
        "grad_norm": mean([g for g in history["grad_norm"] if math.isfinite(g)]),
        "logprob_mismatch": round(diffs / max(1, n_tokens), 6),
        "seconds": round(time.monotonic() - started, 2),
    }
    if accelerator.is_main_process:
        write_json_atomic(metrics_path(root, "optimize", round_id), metrics)
    log.info("optimize round %d: %s", round_id, metrics)
    return metrics
