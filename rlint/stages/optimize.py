"""optimize: a policy-gradient update over the round's train set, through Accelerate.

The same command runs on one CPU, one GPU, or several processes and nodes under
``accelerate launch`` (docs/training.md): the Accelerator takes the launch configuration, while
what changes results (mixed precision, batch sizes, seed) comes from ``params.yaml`` only.
``optimize.minibatch_size`` sequences make one optimizer step whatever the process count: each
process takes its share of the minibatch in micro-batches of ``optimize.micro_batch_size`` and
the gradients accumulate, with the loss normalised by the whole minibatch's token (or sequence)
count, so one process and several compute the same update.

Phases of :func:`train`:

1. **measure** before any update: the trainer's log-probabilities of the sampled tokens against
   the sampler's (``logprob_mismatch``, ``logprob_mismatch_max``), and the reference policy's
   (base policy ``checkpoints/round=0``, loaded once) when the KL penalty is on;
2. **update**: for each minibatch of each epoch, the loss of rlint/losses.py (policy loss by
   name, KL, supervised term), gradient clipping, AdamW, the learning-rate schedule;
3. the stage then saves a Hugging Face checkpoint (safetensors) and the round's DVC metrics.

A round with no learning signal (:func:`learning_signal`: every advantage 0, no supervised or KL
term) trains nothing: the stage says so in one line and carries the previous checkpoint over
(with ``carry_optimizer_state`` this also skips the momentum-only steps AdamW would take on zero
gradients).

The old policy of the ratio is the sampler's log-probabilities (one set per sample), or, with
``optimize.old_logprobs: recompute``, the trainer's own from the measuring forward pass (as TRL's
GRPOTrainer does). ``optimize.reshuffle_epochs: false`` keeps one minibatch order for every epoch
(TRL's), and ``optimize.carry_optimizer_state`` starts AdamW from the state the previous round
stored in its checkpoint (rlint/optimizer_state.py) instead of from zero.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType, gather_object, set_seed

from rlint.config import ConfigError, OptimizeConfig, Params, round_seed
from rlint.data import read_rows
from rlint.losses import aggregation_denominator, policy_objective, token_logprobs_and_entropy
from rlint.optimizer_state import OptimizerStateError, copy_optimizer_state, load_optimizer_state, save_optimizer_state
from rlint.policy import load_policy
from rlint.stages.common import atomic_directory, checkpoint_path, metrics_path, write_json_atomic

log = logging.getLogger(__name__)


# -- batches ------------------------------------------------------------------------------------
def collate(rows: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch. ``input_ids`` (B, L) is context + tokens; the per-token tensors (B, L-1)
    are aligned with the logits that predict position t+1, zero outside trained tokens.
    ``sft_mask`` is 1 on the tokens of rows whose ``sft`` flag is set; ``ref_logprobs`` is filled
    from rows that carry them."""
    width = max(len(r["context_token_ids"]) + len(r["token_ids"]) for r in rows)
    shape = (len(rows), width - 1)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
        "old_logprobs": torch.zeros(shape), "advantages": torch.zeros(shape), "weights": torch.zeros(shape),
        "sft_mask": torch.zeros(shape), "ref_logprobs": torch.zeros(shape),
    }
    for i, r in enumerate(rows):
        context, tokens = list(r["context_token_ids"]), list(r["token_ids"])
        n, start = len(context) + len(tokens), len(context) - 1
        span = slice(start, start + len(tokens))
        batch["input_ids"][i, :n] = torch.tensor(context + tokens)
        batch["attention_mask"][i, :n] = 1
        batch["old_logprobs"][i, span] = torch.tensor(r["logprobs"])
        batch["advantages"][i, span] = torch.tensor(r["advantages"])
        batch["weights"][i, span] = torch.tensor(r["loss_weights"])
        if r.get("sft"):
            batch["sft_mask"][i, span] = 1.0
        if r.get("ref_logprobs") is not None:
            batch["ref_logprobs"][i, span] = torch.tensor(r["ref_logprobs"])
    return batch


def minibatch_plan(n_rows: int, minibatch_size: int, epochs: int, seed: int, reshuffle: bool = True) -> list[list[int]]:
    """Row indices of each optimizer step: a seeded permutation cut into minibatches, drawn anew
    every epoch (``reshuffle``) or drawn once and repeated.

    >>> [len(m) for m in minibatch_plan(10, 4, 2, 0)]
    [4, 4, 2, 4, 4, 2]
    >>> plan = minibatch_plan(10, 4, 2, 0, reshuffle=False); plan[:3] == plan[3:]
    True
    """
    generator = torch.Generator().manual_seed(seed)
    plan: list[list[int]] = []
    order = torch.randperm(n_rows, generator=generator).tolist()
    for epoch in range(epochs):
        if epoch and reshuffle:
            order = torch.randperm(n_rows, generator=generator).tolist()
        plan += [order[i:i + minibatch_size] for i in range(0, n_rows, minibatch_size)]
    return plan


def micro_batches(indices: list[int], rank: int, world: int, micro_batch_size: int) -> list[list[int]]:
    """This process's share of ``indices`` (every world-th, from ``rank``) in micro-batches.

    Every process gets the same number of micro-batches (some possibly empty), because sharded
    models (FSDP) need the same number of forward calls on every process.

    >>> micro_batches(list(range(7)), 0, 2, 2), micro_batches(list(range(7)), 1, 2, 2)
    ([[0, 2], [4, 6]], [[1, 3], [5]])
    >>> micro_batches([0], 1, 2, 2)
    [[]]
    """
    share = indices[rank::world]
    count = max(1, math.ceil(math.ceil(len(indices) / world) / micro_batch_size))
    return [share[k * micro_batch_size:(k + 1) * micro_batch_size] for k in range(count)]


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``, then constant, or a linear or cosine decay that reaches 0
    after ``total_steps``.

    >>> [round(lr_factor(s, 4, 2, "linear"), 3) for s in range(4)]
    [0.5, 1.0, 1.0, 0.5]
    >>> [round(lr_factor(s, 5, 0, "cosine"), 3) for s in range(5)]
    [1.0, 0.905, 0.655, 0.345, 0.095]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    raise ValueError(f"unknown lr schedule {schedule!r}")


def learning_signal(rows: list[dict], cfg: OptimizeConfig) -> dict:
    """Whether the train set can move the policy at all, and why not.

    No signal: every trained token's advantage is 0, no supervised row counts (``sft_weight`` 0 or
    no ``sft`` rows) and no KL term pulls towards the base (``kl_coef`` 0); then every gradient is
    zero and AdamW leaves the weights as they are. Returns ``{"signal": bool, "groups", "all_right",
    "all_wrong", "other_rows"}``: the rollout groups (rows of one problem) with one reward, and the
    rows that are not rollouts (branches, continuations, repairs).

    >>> row = {"kind": "rollout", "problem_id": "p", "reward": 0.0, "advantages": [0.0], "loss_weights": [1.0], "sft": False}
    >>> learning_signal([row, row], OptimizeConfig())["signal"]
    False
    """
    advantage = any(a != 0 and w > 0 for r in rows for a, w in zip(r["advantages"], r["loss_weights"]))
    supervised = cfg.sft_weight > 0 and any(r.get("sft") for r in rows)
    rewards: dict[str, set] = {}
    for r in rows:
        if r.get("kind", "rollout") == "rollout":
            rewards.setdefault(r["problem_id"], set()).add(r.get("reward"))
    return {"signal": advantage or supervised or cfg.kl_coef > 0, "groups": len(rewards),
            "all_right": sum(v == {1.0} for v in rewards.values()), "all_wrong": sum(v <= {0.0, None} for v in rewards.values()),
            "other_rows": sum(r.get("kind", "rollout") != "rollout" for r in rows)}


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


def _empty_like(row: dict) -> dict:
    """A row that trains nothing: fills a process's micro-batch when its share of a minibatch is empty."""
    return {**row, "loss_weights": [0.0] * len(row["token_ids"]), "sft": False}


def policy_forward(model, batch: dict[str, torch.Tensor], temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Trainer log-probabilities (B, L-1) of the batch's tokens, with gradient, and per-position entropy (B, L-1)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits[:, :-1]  # (B, L-1, V)
    return token_logprobs_and_entropy(logits, batch["input_ids"][:, 1:], temperature)


METRIC_KEYS = ("examples", "tokens", "sft_examples", "optimizer_steps", "loss", "policy_loss", "clip_fraction", "kl", "entropy",
               "grad_norm", "sft_nll", "logprob_mismatch", "logprob_mismatch_max")


# -- the trainer ----------------------------------------------------------------------------------
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
            batch = {k: v.to(accelerator.device) for k, v in collate([rows[i] for i in part] or [_empty_like(rows[0])], pad_id).items()}
            logprobs, _ = policy_forward(model, batch, temperature)
            mask = batch["weights"] > 0
            diff = (logprobs - batch["old_logprobs"]).abs()[mask]
            total, count = total + diff.sum().item(), count + int(mask.sum())
            worst = max(worst, diff.max().item()) if diff.numel() else worst
            if cfg.kl_coef > 0:
                ref_lp = logprobs if ref_is_policy else policy_forward(ref_model, batch, temperature)[0]
                ref += _row_values(ref_lp, rows, part)
            if recompute:
                own += _row_values(logprobs, rows, part)
    for i, values in gather_object(ref) if cfg.kl_coef > 0 else []:
        rows[i]["ref_logprobs"] = values
    for i, values in gather_object(own) if recompute else []:
        rows[i]["logprobs"] = values
    sums = gather_object([(total, count, worst)])
    total, count = sum(s[0] for s in sums), sum(s[1] for s in sums)
    return {"logprob_mismatch": total / max(count, 1), "logprob_mismatch_max": max(s[2] for s in sums), "tokens": count}


def _row_values(values: torch.Tensor, rows: list[dict], part: list[int]) -> list[tuple[int, list[float]]]:
    """Per row of a micro-batch, the (B, L-1) per-position ``values`` over that row's completion tokens."""
    out = []
    for row, i in enumerate(part):
        start = len(rows[i]["context_token_ids"]) - 1
        out.append((i, values[row, start:start + len(rows[i]["token_ids"])].float().cpu().tolist()))
    return out


def make_optimizer(model, cfg: OptimizeConfig, previous: Path | None) -> tuple[torch.optim.Optimizer, bool]:
    """AdamW over ``model``'s parameters, with the state stored in checkpoint ``previous`` when one is given and
    holds one. Returns the optimizer and whether a state was loaded."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loaded = previous is not None and load_optimizer_state(optimizer, previous)
    return optimizer, loaded


def train(model, tokenizer, rows: list[dict], cfg: OptimizeConfig, accelerator: Accelerator, seed: int, temperature: float,
          ref_model=None, ref_is_policy: bool = False, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, list[float]]:
    """Measure, then update ``model`` (already prepared) over ``rows`` with ``optimizer`` (a fresh AdamW when None).
    Returns the metrics and the seconds of each optimizer step."""
    if optimizer is None:
        optimizer = make_optimizer(model, cfg, None)[0]
    plan = minibatch_plan(len(rows), cfg.minibatch_size, cfg.epochs, seed, cfg.reshuffle_epochs)
    # not prepared: Accelerate's scheduler wrapper steps once per process, and our steps already span all processes
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, len(plan), cfg.warmup_steps, cfg.lr_schedule))
    optimizer = accelerator.prepare(optimizer)
    pad_id = tokenizer.pad_token_id
    before = measure(model, rows, cfg, accelerator, pad_id, temperature, ref_model, ref_is_policy)

    model.train()
    world, rank = accelerator.num_processes, accelerator.process_index
    totals = {"policy_loss": 0.0, "clipped": 0.0, "tokens": 0.0, "kl": 0.0, "entropy": 0.0, "sft_nll": 0.0, "sft_tokens": 0.0}
    losses, grad_norms, seconds = [], [], []
    for step, indices in enumerate(plan):
        started = time.perf_counter()
        weights = [torch.tensor(rows[i]["loss_weights"]).unsqueeze(0) for i in indices]
        denominators = {"policy": sum(aggregation_denominator(w, cfg.aggregation) for w in weights),
                        "sft": float(sum(len(rows[i]["token_ids"]) for i in indices if rows[i]["sft"]))}
        parts = micro_batches(indices, rank, world, cfg.micro_batch_size)
        step_loss = 0.0
        for k, part in enumerate(parts):
            batch = {key: v.to(accelerator.device) for key, v in collate([rows[i] for i in part] or [_empty_like(rows[indices[0]])], pad_id).items()}
            with accelerator.no_sync(model) if k < len(parts) - 1 else nullcontext():  # all-reduce once, after the last micro-batch
                logprobs, entropy = policy_forward(model, batch, temperature)
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
        losses.append(_sum_over_processes(accelerator, step_loss))
        grad_norms.append(float(grad_norm))
        seconds.append(time.perf_counter() - started)
        log.info("optimize step %d/%d loss %.4f grad_norm %.3f lr %.2e %.2fs", step + 1, len(plan), losses[-1], grad_norms[-1],
                 scheduler.get_last_lr()[0], seconds[-1])
    totals = {key: _sum_over_processes(accelerator, value) for key, value in totals.items()}
    tokens = max(totals["tokens"], 1.0)
    finite = [g for g in grad_norms if math.isfinite(g)]
    metrics = {
        "examples": len(rows),
        "tokens": before["tokens"],  # trained tokens (weight > 0) in the train set, one pass
        "sft_examples": sum(bool(r["sft"]) for r in rows),
        "optimizer_steps": len(plan),
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
    return metrics, seconds


def _sum_over_processes(accelerator: Accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return value
    return float(accelerator.reduce(torch.tensor(value, dtype=torch.float64, device=accelerator.device), reduction="sum"))


def _round(value: float) -> float:
    return round(float(value), 5)


# -- the stage ------------------------------------------------------------------------------------
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


def run(params: Params, round_id: int, root: Path) -> dict:
    cfg = params.optimize
    seed = round_seed(params, round_id, "optimize")
    set_seed(seed)
    rows = [r for r in read_rows(root, "train_set", round_id) if r["token_ids"] and any(w > 0 for w in r["loss_weights"])]
    extra = {"origin": "optimize", "round": round_id, "seed": seed, "mode": params.mode}
    signal = learning_signal(rows, cfg)
    if rows and not signal["signal"]:
        return _no_signal(params, round_id, root, rows, signal, extra)
    accelerator = make_accelerator(cfg)
    model, tokenizer = load_policy(checkpoint_path(root, round_id - 1))
    model = prepare_model(model, cfg, accelerator)
    # the KL reference is the base policy; in round 1 that is the policy being trained, measured before its first update
    ref_is_policy = round_id - 1 == 0
    ref_model = None
    if cfg.kl_coef > 0 and not ref_is_policy:
        ref_model = load_policy(checkpoint_path(root, 0))[0].to(accelerator.device).eval()
    started = time.monotonic()
    previous = checkpoint_path(root, round_id - 1)
    optimizer, carried = None, False
    if cfg.carry_optimizer_state:
        if accelerator.distributed_type == DistributedType.FSDP:
            raise ConfigError("params.yaml: optimize.carry_optimizer_state is not supported under FSDP (its optimizer state is sharded)")
        try:
            optimizer, carried = make_optimizer(model, cfg, previous)
        except OptimizerStateError as err:
            raise ConfigError(str(err)) from None
        log.info("optimize round %d: AdamW state %s", round_id, f"carried from {previous}" if carried else "fresh (none stored in the previous checkpoint)")
    if rows:
        metrics, seconds = train(model, tokenizer, rows, cfg, accelerator, seed, params.sampling.temperature, ref_model, ref_is_policy, optimizer)
    else:
        metrics, seconds = dict.fromkeys(METRIC_KEYS, 0), []
        log.warning("optimize round %d: nothing to train on; the checkpoint is the previous policy", round_id)
    del ref_model
    carry = cfg.carry_optimizer_state
    save_checkpoint(accelerator, model, tokenizer, checkpoint_path(root, round_id), extra,
                    optimizer=optimizer if carry and rows else None, optimizer_from=previous if carry and not rows else None)
    metrics = {"round": round_id, **metrics, **({"optimizer_state_carried": carried} if carry else {})}
    if accelerator.is_main_process:
        write_json_atomic(metrics_path(root, "optimize", round_id), metrics)
    log.info("optimize round %d: %s (%.1fs, %.2fs per step, %d processes)", round_id, metrics, time.monotonic() - started,
             sum(seconds) / max(len(seconds), 1), accelerator.num_processes)
    return metrics


def _no_signal(params: Params, round_id: int, root: Path, rows: list[dict], signal: dict, extra: dict) -> dict:
    """A round with nothing to learn: say so in one line, carry the policy over, spend no optimizer time."""
    repair = getattr(params.mine, "strategy", None) == "repair"
    hint = "; failures in all-wrong groups can only give signal through repairs (mine.strategy: repair)" if signal["all_wrong"] and not repair else ""
    log.warning("optimize round %d: no learning signal: all %d groups uniform (%d all right, %d all wrong), %d mined or corrected rows "
                "with nonzero credit, no supervised or KL term; the policy of round %d is carried over, no optimizer steps%s",
                round_id, signal["groups"], signal["all_right"], signal["all_wrong"], signal["other_rows"], round_id - 1, hint)
    if not PartialState().is_main_process:
        return {"round": round_id}
    carry_over_checkpoint(checkpoint_path(root, round_id - 1), checkpoint_path(root, round_id), extra, params.optimize.carry_optimizer_state)
    metrics = {"round": round_id, **dict.fromkeys(METRIC_KEYS, 0), "examples": len(rows), "no_signal": True,
               "uniform_groups": signal["groups"], "all_wrong_groups": signal["all_wrong"]}
    write_json_atomic(metrics_path(root, "optimize", round_id), metrics)
    return metrics
