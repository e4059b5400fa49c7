"""credit: the round's train set with per-token advantages (see rlint/credit.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rlint.config import Params
from rlint.credit import branch_token_advantages, failure_token_advantages, group_outcome_advantages, outcome_token_advantages
from rlint.data import read_rows, write_rows
from rlint.stages.common import metrics_path, write_json_atomic

log = logging.getLogger(__name__)


def build_train_set(rollouts: list[dict], failures: list[dict], branches: list[dict], params: Params) -> list[dict]:
    """Train-set rows: one per rollout, one per corrected branch (mode "outcome": rollouts only)."""
    cfg = params.credit
    rewards = np.array([np.nan if r["reward"] is None else r["reward"] for r in rollouts], dtype=np.float64)
    outcome = group_outcome_advantages(rewards, np.array([r["problem_id"] for r in rollouts]), cfg.epsilon)
    located = {f["failure_id"]: f for f in failures if f["first_error_step"] is not None} if params.mode != "outcome" else {}
    rows = []
    for rollout, advantage in zip(rollouts, outcome):
        n_tokens = len(rollout["token_ids"])
        failure = located.get(rollout["rollout_id"])
        if failure is None:
            advantages, weights = outcome_token_advantages(n_tokens, float(advantage))
        else:
            advantages, weights = failure_token_advantages(
                n_tokens, rollout["step_ends"], failure["first_error_step"], failure["value_before"], failure["value_after"],
                float(advantage), cfg.process_weight, cfg.after_error_weight,
            )
        rows.append(_row(rollout["rollout_id"], "rollout", rollout, list(rollout["prompt_token_ids"]), rollout["token_ids"], rollout["logprobs"], advantages, weights, rollout["reward"]))
    parents = {r["rollout_id"]: r for r in rollouts}
    for branch in branches if params.mode != "outcome" else []:
        parent = parents[branch["parent_rollout_id"]]
        context = list(parent["prompt_token_ids"]) + list(parent["token_ids"][: branch["branch_token_offset"]])
        advantages, weights = branch_token_advantages(len(branch["token_ids"]), branch["reward"], branch["value_before"], cfg.branch_weight)
        rows.append(_row(branch["branch_id"], "branch", parent, context, branch["token_ids"], branch["logprobs"], advantages, weights, branch["reward"]))
    return rows


def _row(example_id, kind, rollout, context, tokens, logprobs, advantages, weights, reward) -> dict:
    return {
        "example_id": example_id, "kind": kind, "rollout_id": rollout["rollout_id"], "round": rollout["round"],
        "policy_version": rollout["policy_version"], "problem_id": rollout["problem_id"], "context_token_ids": context,
        "token_ids": list(tokens), "logprobs": list(logprobs), "advantages": advantages.tolist(),
        "loss_weights": weights.tolist(), "reward": reward,
    }


def run(params: Params, round_id: int, root: Path) -> dict:
    rollouts = read_rows(root, "rollouts", round_id)
    failures = read_rows(root, "failures", round_id)
    branches = read_rows(root, "branches", round_id)
    rows = build_train_set(rollouts, failures, branches, params)
    write_rows(root, "train_set", round_id, rows)
    token_adv = np.concatenate([np.asarray(r["advantages"], dtype=np.float64) for r in rows]) if rows else np.zeros(0)
    token_w = np.concatenate([np.asarray(r["loss_weights"], dtype=np.float64) for r in rows]) if rows else np.zeros(0)
    trained = token_w > 0
    metrics = {
        "round": round_id,
        "examples": len(rows),
        "branch_examples": sum(r["kind"] == "branch" for r in rows),
        "trained_tokens": int(trained.sum()),
        "masked_tokens": int((~trained).sum()),
        "advantage_mean": round(float(token_adv[trained].mean()), 4) if trained.any() else 0.0,
        "advantage_std": round(float(token_adv[trained].std()), 4) if trained.any() else 0.0,
        "positive_token_share": round(float((token_adv[trained] > 0).mean()), 4) if trained.any() else 0.0,
        "negative_token_share": round(float((token_adv[trained] < 0).mean()), 4) if trained.any() else 0.0,
    }
    write_json_atomic(metrics_path(root, "credit", round_id), metrics)
    log.info("credit round %d: %s", round_id, metrics)
    return metrics
