"""Policy scores the credit stage needs: the reference answer's probability after each step (``info_gain``)
and a repair's log-probabilities under the original prompt. The model is passed in; torch is imported
only when a function runs (a credit stage that needs neither imports no torch).
"""

from __future__ import annotations

import math

import numpy as np

from rlint.credit import reasoning_steps
from rlint.sequences import of_branch, of_prefix


def answer_probabilities(rollouts: list[dict], model, tokenizer, answer_text, batch_size: int, temperature: float) -> list[np.ndarray]:
    """For each rollout, ``p_j = P(answer_text(answer) | prompt, steps 1..j)`` for j = 0..R (R reasoning steps). N arrays (R + 1,)."""
    from rlint.scoring import target_logprobs

    contexts, targets, owners = [], [], []
    for i, rollout in enumerate(rollouts):
        answer_ids = tokenizer.encode(answer_text(rollout["answer"]), add_special_tokens=False)
        ends = [0] + list(rollout["step_ends"])
        for j in range(reasoning_steps(len(rollout["step_ends"])) + 1):
            contexts.append(of_prefix(rollout, ends[j]).context_ids)
            targets.append(answer_ids)
            owners.append(i)
    logprobs = target_logprobs(model, contexts, targets, tokenizer.pad_token_id, batch_size, temperature)
    probs: list[list[float]] = [[] for _ in rollouts]
    for owner, value in zip(owners, logprobs):
        probs[owner].append(math.exp(value))
    return [np.array(p, dtype=np.float64) for p in probs]


def repair_old_logprobs(branches: list[dict], parents: dict[str, dict], model, pad_id: int, batch_size: int, temperature: float) -> dict[str, list[float]]:
    """Per-token log-probabilities of each repair under the ORIGINAL prompt, by the round's sampling policy.

    A repair was sampled after the repair prompt, but it is trained as a completion of the
    problem's own prompt; the clipped ratio needs the old policy's probability of the same
    tokens in that same context, so they are recomputed here (teacher-forced, at the sampling
    temperature). Returns branch_id -> (R,) list.
    """
    from rlint.scoring import target_token_logprobs

    repairs = [b for b in branches if b.get("kind") == "repair"]
    if not repairs:
        return {}
    contexts = [of_branch(parents[b["parent_rollout_id"]], b).context_ids for b in repairs]
    scored = target_token_logprobs(model, contexts, [list(b["token_ids"]) for b in repairs], pad_id, batch_size, temperature)
    return {b["branch_id"]: values.tolist() for b, values in zip(repairs, scored)}
