"""The credit stage's library: a round's rows -> estimator inputs -> train-set rows (estimators in rlint/credit.py).

``mode`` decides which supervision data exist (``outcome``: rollouts only; ``internalized``
and ``oracle``: mined failures and corrected branches too); ``credit.estimator`` decides how
they become per-token advantages (a :class:`rlint.credit.Credit`).

Each row also carries ``sft``: the example passed the task's format gate and its verifier
(reward 1), so the optimize stage may add a supervised loss on it (``optimize.sft_weight``),
and a summary of its advantages over trained tokens (:func:`advantage_summary`), which the audit
sums instead of decoding every token's advantage.
"""

from __future__ import annotations

import logging

import numpy as np

from rlint.config import Params
from rlint.credit import ESTIMATORS, BranchInput, CreditInputs, LocatedFailure, group_outcome_advantages, watermark_gains
from rlint.repair import REPAIR_LOCATED, unflatten_spans
from rlint.sequences import of_branch, of_continuation
from rlint.steps import prefix_offset, step_char_ends
from rlint.tasks import load_task

log = logging.getLogger(__name__)


def good_prefix_continuations(failures: list[dict], continuations: list[dict], branches: list[dict]) -> list[tuple[dict, float]]:
    """Mining continuations that start from a good prefix of a located failure, with that prefix's value.

    Repair attempts (``stage: "repair"``) are not continuations of a prefix and are left out.
    A prefix of ``s`` steps is good when ``s < first_error_step``. Its value is the probe's
    estimate (``probe_steps``/``probe_values``; ``value_before`` for the last good prefix), else
    the mean reward of the failure's continuations from it. Continuations already kept as
    branches are left out (they are trained as branches). Returns ``(continuation row, value)`` pairs.
    """
    by_failure = {f["failure_id"]: f for f in failures if f["first_error_step"] is not None}
    kept = {b["branch_id"] for b in branches}
    rewards: dict[tuple[str, int], list[float]] = {}
    for cont in continuations:
        rewards.setdefault((cont["failure_id"], cont["prefix_steps"]), []).append(cont["reward"] or 0.0)
    out = []
    for cont in continuations:
        failure = by_failure.get(cont["failure_id"])
        if (failure is None or cont["stage"] == "repair" or cont["prefix_steps"] >= failure["first_error_step"] or cont["continuation_id"] in kept
                or not cont["token_ids"]):
            continue
        values = dict(zip(failure["probe_steps"] or [], failure["probe_values"] or []))
        if cont["prefix_steps"] == failure["first_error_step"] - 1:
            values[cont["prefix_steps"]] = failure["value_before"]
        value = values.get(cont["prefix_steps"])
        if value is None:
            value = float(np.mean(rewards[(cont["failure_id"], cont["prefix_steps"])]))
        out.append((cont, float(value)))
    return out


def credit_inputs(rollouts: list[dict], failures: list[dict], branches: list[dict], mode: str, answer_probs: list[np.ndarray] | None = None,
                  continuations: list[tuple[dict, float]] = ()) -> CreditInputs:
    """The estimator's view of a round; mode ``outcome`` hides failures, branches and continuations.

    ``continuations``: (row, prefix value) pairs from :func:`good_prefix_continuations`, in
    ``CreditInputs.continuations`` with kind ``continuation``.
    """
    index = {r["rollout_id"]: i for i, r in enumerate(rollouts)}
    mined = mode != "outcome"
    repaired = {f["failure_id"]: f for f in failures if f.get("decided_by") in REPAIR_LOCATED}
    return CreditInputs(
        rewards=np.array([np.nan if r["reward"] is None else r["reward"] for r in rollouts], dtype=np.float64),
        group_ids=np.array([r["problem_id"] for r in rollouts]),
        n_tokens=[len(r["token_ids"]) for r in rollouts],
        step_ends=[list(r["step_ends"]) for r in rollouts],
        failures={index[f["failure_id"]]: LocatedFailure(f["first_error_step"], f["value_before"], f["value_after"],
                                                         unflatten_spans(f["changed_spans"]) if f["failure_id"] in repaired else None)
                  for f in failures if mined and f["first_error_step"] is not None},
        branches=[BranchInput(index[b["parent_rollout_id"]], len(b["token_ids"]), b["reward"], b["value_before"] or 0.0,
                              "repair", unflatten_spans(repaired[b["failure_id"]]["repair_changed_spans"]))
                  if b.get("kind") == "repair" else BranchInput(index[b["parent_rollout_id"]], len(b["token_ids"]), b["reward"], b["value_before"])
                  for b in branches] if mined else [],
        answer_probs=answer_probs,
        continuations=[BranchInput(index[c["failure_id"]], len(c["token_ids"]), c["reward"] or 0.0, value, "continuation")
                       for c, value in continuations] if mined else [],
    )


def build_train_set(rollouts: list[dict], failures: list[dict], branches: list[dict], params: Params, answer_probs: list[np.ndarray] | None = None,
                    task=None, replay_prefixes: dict[str, str] | None = None, continuations: list[dict] = (),
                    repair_logprobs: dict[str, list[float]] | None = None) -> list[dict]:
    """Train-set rows: one per rollout, one per corrected branch, one per good-prefix mining continuation
    when ``credit.continuation_weight`` > 0, and one per repair attempt with a nonzero advantage when
    ``credit.repairer_weight`` > 0 (mode "outcome": rollouts only).

    ``continuations``: the round's ``continuations`` rows; those of ``stage: "repair"`` are repair
    attempts, trained as completions of their failure's repair prompt (kind ``repair_attempt``, see
    :func:`repairer_rows`); their log-probabilities were sampled after that same prompt, so they are
    the "old" ones as they stand.
    ``replay_prefixes``: rollout_id -> text of the archived prefix a replayed rollout continued
    (the format gate judges that prefix and the completion together, as the verifier did).
    ``repair_logprobs``: branch_id -> log-probabilities of a repair (kind "repair") under the
    original prompt (:func:`repair_old_logprobs`); a repair is trained as a completion of the
    problem's own prompt, so those are its "old" log-probabilities, not the repair prompt's.
    """
    task = task or load_task(params.task, params.limits)
    replay_prefixes = replay_prefixes or {}
    extra = good_prefix_continuations(failures, continuations, branches) if params.credit.continuation_weight > 0 else []
    inputs = credit_inputs(rollouts, failures, branches, params.mode, answer_probs, extra)
    credit = ESTIMATORS[params.credit.estimator].fn(inputs, params.credit)
    rows = []
    for rollout, (advantages, weights) in zip(rollouts, credit.rollouts):
        sft = rollout["reward"] == 1.0 and task.well_formed(replay_prefixes.get(rollout["rollout_id"], "") + rollout["completion"])
        rows.append(_row(rollout["rollout_id"], "rollout", rollout, list(rollout["prompt_token_ids"]), rollout["token_ids"], rollout["logprobs"],
                         advantages, weights, rollout["reward"], sft))
    parents = {r["rollout_id"]: r for r in rollouts}
    for branch, (advantages, weights) in zip(branches, credit.branches):
        parent = parents[branch["parent_rollout_id"]]
        if branch.get("kind") == "repair":
            logprobs = (repair_logprobs or {}).get(branch["branch_id"])
            if logprobs is None:
                raise ValueError(f"repair branch {branch['branch_id']}: old log-probabilities under the original prompt are missing")
            sft = branch["reward"] == 1.0 and task.well_formed(branch["completion"])
            rows.append(_row(branch["branch_id"], "repair", parent, of_branch(parent, branch).context_ids, branch["token_ids"], logprobs, advantages, weights,
                             branch["reward"], sft))
            continue
        # the parent's good prefix is context (no loss): its tokens are trained once, in the parent's row
        context = of_branch(parent, branch).context_ids
        text = replay_prefixes.get(parent["rollout_id"], "") + _prefix_text(parent["completion"], task.step_delimiter, branch["branch_step"], task.merge_empty_steps) + branch["completion"]
        sft = branch["reward"] == 1.0 and task.well_formed(text)
        rows.append(_row(branch["branch_id"], "branch", parent, context, branch["token_ids"], branch["logprobs"], advantages, weights, branch["reward"], sft))
    for (cont, _), (advantages, weights) in zip(extra, credit.continuations):
        parent = parents[cont["failure_id"]]
        context = of_continuation(parent, cont).context_ids
        text = replay_prefixes.get(parent["rollout_id"], "") + _prefix_text(parent["completion"], task.step_delimiter, cont["prefix_steps"], task.merge_empty_steps) + cont["completion"]
        sft = cont["reward"] == 1.0 and task.well_formed(text)
        rows.append(_row(cont["continuation_id"], "continuation", parent, context, cont["token_ids"], cont["logprobs"], advantages, weights, cont["reward"], sft))
    if params.mode != "outcome" and params.credit.repairer_weight > 0:
        rows += repairer_rows(failures, [c for c in continuations if c["stage"] == "repair"], parents, params.credit)
    return rows


def repairer_rows(failures: list[dict], attempts: list[dict], rollouts: dict[str, dict], cfg) -> list[dict]:
    """Train-set rows of kind ``repair_attempt``: every attempt in the context of its failure's repair
    prompt, with ``credit.repairer_weight`` times the GRPO advantage of its verifier reward over the
    failure's attempts (:func:`rlint.credit.group_outcome_advantages`, ``credit.group_std`` and
    ``epsilon`` as for rollouts; unscorable counts as 0) on every token. Attempts with a zero
    advantage (every attempt of the failure verified, or none) are left out."""
    prompts = {f["failure_id"]: f["repair_prompt_token_ids"] for f in failures}
    attempts = [a for a in attempts if a["failure_id"] in prompts]
    for attempt in attempts:
        if prompts[attempt["failure_id"]] is None:
            raise ValueError(f"failure {attempt['failure_id']}: repair attempts without the repair prompt (failures.repair_prompt_token_ids)")
    advantages = cfg.repairer_weight * group_outcome_advantages(
        np.array([np.nan if a["reward"] is None else a["reward"] for a in attempts], dtype=np.float64),
        np.array([a["failure_id"] for a in attempts]), cfg.epsilon, group_std=cfg.group_std)
    rows = []
    for attempt, advantage in zip(attempts, advantages):
        n = len(attempt["token_ids"])
        if advantage == 0 or not n:
            continue
        rows.append(_row(attempt["continuation_id"], "repair_attempt", rollouts[attempt["failure_id"]], list(prompts[attempt["failure_id"]]),
                         attempt["token_ids"], attempt["logprobs"], np.full(n, advantage, dtype=np.float32), np.ones(n, dtype=np.float32),
                         attempt["reward"], False))
    return rows


def _prefix_text(completion: str, delimiter: str, steps: int, merge_empty: bool = False) -> str:
    """The text of the first ``steps`` steps of a completion, as rlint/steps.py splits them."""
    return completion[:prefix_offset(step_char_ends(completion, delimiter, merge_empty), steps)]


def advantage_summary(advantages: np.ndarray, loss_weights: np.ndarray) -> dict:
    """Sufficient statistics of one row's advantages over its trained tokens (loss weight > 0).

    ``advantages``, ``loss_weights``: (T,), taken as the float32 values the train set stores.
    Returns the train_set columns ``trained_tokens``, ``advantage_sum``, ``advantage_sum_sq``
    (float64 sums), ``positive_tokens``, ``negative_tokens`` (advantage > 0 / < 0), ``advantage_min``,
    ``advantage_max`` (None when no token is trained).
    """
    values = np.asarray(advantages, dtype=np.float32).astype(np.float64)[np.asarray(loss_weights, dtype=np.float32) > 0]
    return {
        "trained_tokens": int(values.size), "advantage_sum": float(values.sum()), "advantage_sum_sq": float((values * values).sum()),
        "positive_tokens": int((values > 0).sum()), "negative_tokens": int((values < 0).sum()),
        "advantage_min": float(values.min()) if values.size else None, "advantage_max": float(values.max()) if values.size else None,
    }


def _row(example_id, kind, rollout, context, tokens, logprobs, advantages, weights, reward, sft) -> dict:
    return {
        "example_id": example_id, "kind": kind, "rollout_id": rollout["rollout_id"], "round": rollout["round"],
        "policy_version": rollout["policy_version"], "problem_id": rollout["problem_id"], "context_token_ids": context,
        "token_ids": list(tokens), "logprobs": list(logprobs), "advantages": advantages.tolist(),
        "loss_weights": weights.tolist(), "reward": reward, "sft": bool(sft), **advantage_summary(advantages, weights),
    }


def credit_metrics(rows: list[dict], round_id: int, answer_probs: list[np.ndarray] | None) -> dict:
    token_adv = np.concatenate([np.asarray(r["advantages"], dtype=np.float64) for r in rows]) if rows else np.zeros(0)
    token_w = np.concatenate([np.asarray(r["loss_weights"], dtype=np.float64) for r in rows]) if rows else np.zeros(0)
    trained = token_w > 0
    metrics = {
        "round": round_id,
        "examples": len(rows),
        "branch_examples": sum(r["kind"] == "branch" for r in rows),
        "repair_examples": sum(r["kind"] == "repair" for r in rows),
        "continuation_examples": sum(r["kind"] == "continuation" for r in rows),
        "repair_attempt_examples": sum(r["kind"] == "repair_attempt" for r in rows),
        "sft_examples": sum(r["sft"] for r in rows),
        "trained_tokens": int(trained.sum()),
        "masked_tokens": int((~trained).sum()),
        "advantage_mean": round(float(token_adv[trained].mean()), 4) if trained.any() else 0.0,
        "advantage_std": round(float(token_adv[trained].std()), 4) if trained.any() else 0.0,
        "positive_token_share": round(float((token_adv[trained] > 0).mean()), 4) if trained.any() else 0.0,
        "negative_token_share": round(float((token_adv[trained] < 0).mean()), 4) if trained.any() else 0.0,
    }
    if answer_probs is not None:
        gains = np.concatenate([watermark_gains(p) for p in answer_probs] + [np.zeros(0)])
        metrics["step_gain_mean"] = round(float(gains.mean()), 4) if len(gains) else 0.0
        metrics["step_gain_positive_share"] = round(float((gains > 0).mean()), 4) if len(gains) else 0.0
    log.info("credit round %d: %s", round_id, metrics)
    return metrics
