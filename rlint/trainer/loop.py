"""The training loop: measure, update, summarise (phases in rlint/trainer/__init__.py).

Every process calls the same functions in the same order: the gathers and reductions inside them
are collective.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from rlint.config import ConfigError, OptimizeConfig
from rlint.losses import aggregation_denominator, policy_objective, token_logprobs_and_entropy
from rlint.optimizer_state import load_optimizer_state
from rlint.trainer.batches import micro_batch, row_values
from rlint.trainer.plan import lr_factor, micro_batches, minibatch_plan

log = logging.getLogger(__name__)

METRIC_KEYS = ("examples", "tokens", "sft_examples", "optimizer_steps", "loss", "policy_loss", "clip_fraction", "kl", "entropy",
               "grad_norm", "sft_nll", "logprob_mismatch", "logprob_mismatch_max")
TOTAL_KEYS = ("policy_loss", "clipped", "tokens", "kl", "entropy", "sft_nll", "sft_tokens")  # summed over micro-batches and processes


def make_accelerator(cfg: OptimizeConfig) -> Accelerator:
    """The Accelerator of this launch (one CPU process by default; ``accelerate launch`` sets the rest)."""
    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("params.yaml: optimize.mixed_precision='fp16' needs a GPU; use 'no' or 'bf16' on the CPU")
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision)


def prepare_model(model, cfg: OptimizeConfig, accelerator: Accelerator):
    """Hand a model to the Accelerator for training (gradient checkpointing first, when asked)."""
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return accelerator.prepare(model)


def make_optimizer(model, cfg: OptimizeConfig, previous: Path | None) -> tuple[torch.optim.Optimizer, bool]:
    """AdamW over ``model``'s parameters, with the state stored in checkpoint ``previous`` when one is given and
    holds one. Returns the optimizer and whether a state was loaded."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loaded = previous is not None and load_optimizer_state(optimizer, previous)
    return optimizer, loaded


def policy_forward(model, batch: dict[str, torch.Tensor], temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Trainer log-probabilities (B, L-1) of the batch's tokens, with gradient, and per-position entropy (B, L-1)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits[:, :-1]  # (B, L-1, V)
    return token_logprobs_and_entropy(logits, batch["input_ids"][:, 1:], temperature)


def measure(model, rows: list[dict], cfg: OptimizeConfig, accelerator: Accelerator, pad_id: int, temperature: float,
            ref_model=None, ref_is_policy: bool = False) -> dict:
    """Before any update: sampler-versus-trainer log-probability mismatch over trained tokens and,
    when the KL penalty is on, the reference log-probabilities of every row (stored on the rows).
    With ``old_logprobs: recompute`` the trainer's log-probabilities replace each row's ``logprobs``
    (the mismatch is measured against the sampler's first)."""
    model.eval()
    recompute = cfg.old_logprobs == "recompute"
    total, count, worst, ref, own = 0.0, 0, 0.0, [], []
    with torch.no_grad():
        for part in micro_batches(list(range(len(rows))), accelerator.process_index, accelerator.num_processes, cfg.micro_batch_size):
            batch = micro_batch(rows, part, rows[0], pad_id, accelerator.device)
            logprobs, _ = policy_forward(model, batch, temperature)  # (B, L-1)
            mask = batch["weights"] > 0
            diff = (logprobs - batch["old_logprobs"]).abs()[mask]
            total, count = total + diff.sum().item(), count + int(mask.sum())
            worst = max(worst, diff.max().item()) if diff.numel() else worst
            if cfg.kl_coef > 0:
                ref_lp = logprobs if ref_is_policy else policy_forward(ref_model, batch, temperature)[0]
                ref += row_values(ref_lp, rows, part)
            if recompute:
                own += row_values(logprobs, rows, part)
    for i, values in gather_object(ref) if cfg.kl_coef > 0 else []:
        rows[i]["ref_logprobs"] = values
    for i, values in gather_object(own) if recompute else []:
        rows[i]["logprobs"] = values
    sums = gather_object([(total, count, worst)])
    total, count = sum(s[0] for s in sums), sum(s[1] for s in sums)
    return {"logprob_mismatch": total / max(count, 1), "logprob_mismatch_max": max(s[2] for s in sums), "tokens": count}


def update(model, rows: list[dict], indices: list[int], cfg: OptimizeConfig, accelerator: Accelerator, optimizer, scheduler,
           pad_id: int, temperature: float, totals: dict[str, float]) -> tuple[float, float]:
    """One optimizer step over minibatch ``indices``: this process's micro-batches accumulate gradients, all-reduced
    once; then clipping, AdamW and the schedule. Adds the step's sums to ``totals`` (:data:`TOTAL_KEYS`).
    Returns the step's loss over all processes and the gradient norm before clipping."""
    world = accelerator.num_processes
    weights = [torch.tensor(rows[i]["loss_weights"]).unsqueeze(0) for i in indices]  # (1, T) each
    denominators = {"policy": sum(aggregation_denominator(w, cfg.aggregation) for w in weights),
                    "sft": float(sum(len(rows[i]["token_ids"]) for i in indices if rows[i]["sft"]))}
    parts = micro_batches(indices, accelerator.process_index, world, cfg.micro_batch_size)
    step_loss = 0.0
    for k, part in enumerate(parts):
        batch = micro_batch(rows, part, rows[indices[0]], pad_id, accelerator.device)
        with accelerator.no_sync(model) if k < len(parts) - 1 else nullcontext():  # all-reduce once, after the last micro-batch
            logprobs, entropy = policy_forward(model, batch, temperature)  # (B, L-1) each
            loss, stats = policy_objective(logprobs, batch, cfg, denominators, scale=world)
            accelerator.backward(loss)
        step_loss += loss.item() / world
        stats["entropy"] = float((entropy * (batch["weights"] > 0)).sum())
        for key, value in stats.items():
            totals[key] += value
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return _sum_over_processes(accelerator, step_loss), float(grad_norm)


def train(model, tokenizer, rows: list[dict], cfg: OptimizeConfig, accelerator: Accelerator, seed: int, temperature: float,
          ref_model=None, ref_is_policy: bool = False, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, list[float]]:
    """Measure, then update ``model`` (already prepared) over ``rows`` with ``optimizer`` (a fresh AdamW when None).
    Returns the metrics (:data:`METRIC_KEYS`) and the seconds of each optimizer step."""
    if optimizer is None:
        optimizer = make_optimizer(model, cfg, None)[0]
    plan = minibatch_plan(len(rows), cfg.minibatch_size, cfg.epochs, seed, cfg.reshuffle_epochs)
    # not prepared: Accelerate's scheduler wrapper steps once per process, and our steps already span all processes
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, len(plan), cfg.warmup_steps, cfg.lr_schedule))
    optimizer = accelerator.prepare(optimizer)
    pad_id = tokenizer.pad_token_id
    before = measure(model, rows, cfg, accelerator, pad_id, temperature, ref_model, ref_is_policy)

    model.train()
    totals = dict.fromkeys(TOTAL_KEYS, 0.0)
    losses, grad_norms, seconds = [], [], []
    for step, indices in enumerate(plan):
        started = time.perf_counter()
        loss, grad_norm = update(model, rows, indices, cfg, accelerator, optimizer, scheduler, pad_id, temperature, totals)
        losses.append(loss)
        grad_norms.append(grad_norm)
        seconds.append(time.perf_counter() - started)
        log.info("optimize step %d/%d loss %.4f grad_norm %.3f lr %.2e %.2fs", step + 1, len(plan), losses[-1], grad_norms[-1],
                 scheduler.get_last_lr()[0], seconds[-1])
    totals = {key: _sum_over_processes(accelerator, value) for key, value in totals.items()}
    return summarise(rows, len(plan), before, losses, grad_norms, totals), seconds


def summarise(rows: list[dict], steps: int, before: dict, losses: list[float], grad_norms: list[float], totals: dict[str, float]) -> dict:
    """The round's metrics: means over steps (loss, gradient norm) and over trained tokens (the rest), rounded."""
    tokens = max(totals["tokens"], 1.0)
    finite = [g for g in grad_norms if math.isfinite(g)]
    return {
        "examples": len(rows),
        "tokens": before["tokens"],  # trained tokens (weight > 0) in the train set, one pass
        "sft_examples": sum(bool(r["sft"]) for r in rows),
        "optimizer_steps": steps,
        "loss": _round(sum(losses) / len(losses)) if losses else 0.0,
        "policy_loss": _round(totals["policy_loss"] / tokens),
        "clip_fraction": _round(totals["clipped"] / tokens),
        "kl": _round(totals["kl"] / tokens),
        "entropy": _round(totals["entropy"] / tokens),
        "grad_norm": _round(sum(finite) / len(finite)) if finite else 0.0,
        "sft_nll": _round(totals["sft_nll"] / max(totals["sft_tokens"], 1.0)),
        "logprob_mismatch": round(before["logprob_mismatch"], 6),
        "logprob_mismatch_max": round(before["logprob_mismatch_max"], 6),
    }


def _sum_over_processes(accelerator: Accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return value
    return float(accelerator.reduce(torch.tensor(value, dtype=torch.float64, device=accelerator.device), reduction="sum"))


def _round(value: float) -> float:
    return round(float(value), 5)
