"""What each optimizer step sees: minibatches, each process's micro-batches, the learning rate;
and whether a train set can move the policy at all."""

from __future__ import annotations

import math

import torch

from rlint.config import OptimizeConfig


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
