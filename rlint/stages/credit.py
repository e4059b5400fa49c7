"""credit: the round's train set with per-token advantages (read -> build_train_set -> write).

The assembly of estimator inputs and train-set rows is rlint/train_set.py, the estimators
rlint/credit.py. The ``info_gain`` estimator, and repairs (their old log-probabilities under the
original prompt), also read the round's sampling policy (``checkpoints/round=<k-1>``), scored by
rlint/credit_scores.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rlint.config import Params
from rlint.credit import ESTIMATORS
from rlint.credit_scores import answer_probabilities, repair_old_logprobs
from rlint.data import read_rows, write_rows
from rlint.sequences import of_rollout
from rlint.stages.common import checkpoint_path, metrics_path, write_json_atomic
from rlint.tasks import load_task
from rlint.train_set import build_train_set, credit_metrics

log = logging.getLogger(__name__)


def run(params: Params, round_id: int, root: Path) -> dict:
    cfg = params.credit
    rollouts = read_rows(root, "rollouts", round_id)
    failures = read_rows(root, "failures", round_id)
    branches = read_rows(root, "branches", round_id)
    continuations = read_rows(root, "continuations", round_id) if params.credit.continuation_weight > 0 or params.credit.repairer_weight > 0 else []
    task = load_task(params.task, params.limits)
    answer_probs = None
    if ESTIMATORS[cfg.estimator].needs_answer_probs:
        from rlint.policy import load_policy

        model, tokenizer = load_policy(checkpoint_path(root, round_id - 1))
        model.eval()
        answer_text = (lambda answer: cfg.answer_text.replace("{answer}", answer)) if cfg.answer_text else task.answer_text
        answer_probs = answer_probabilities(rollouts, model, tokenizer, answer_text, cfg.score_batch_size, params.sampling.temperature)
    repair_logprobs = {}
    if params.mode != "outcome" and any(b.get("kind") == "repair" for b in branches):
        from rlint.policy import load_policy

        model, tokenizer = load_policy(checkpoint_path(root, round_id - 1))
        model.eval()
        parents = {r["rollout_id"]: r for r in rollouts}
        repair_logprobs = repair_old_logprobs(branches, parents, model, tokenizer.pad_token_id, cfg.score_batch_size, params.sampling.temperature)
    rows = build_train_set(rollouts, failures, branches, params, answer_probs, task, replay_prefixes(rollouts, checkpoint_path(root, round_id - 1)),
                           continuations, repair_logprobs)
    write_rows(root, "train_set", round_id, rows)
    metrics = credit_metrics(rows, round_id, answer_probs)
    write_json_atomic(metrics_path(root, "credit", round_id), metrics)
    return metrics


def replay_prefixes(rollouts: list[dict], checkpoint: Path) -> dict[str, str]:
    """Text of the archived prefix at the end of each replayed rollout's context (decoded with the policy's tokenizer)."""
    replays = [r for r in rollouts if r.get("archived_prefix_token_count")]
    if not replays:
        return {}
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    return {r["rollout_id"]: tokenizer.decode(of_rollout(r).archived_ids, skip_special_tokens=True) for r in replays}
