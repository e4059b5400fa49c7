"""Identify by repair, the mine stage's side (the method and its gates: rlint/repair.py).

Each chosen failure gets ``mine.repair_samples`` repair attempts from the round's sampling
policy, in one batched call: the task writes the repair prompt (the embedded task's compact
format, or ``task.repair_template`` wrapped in the model's chat template when
``task.repair_chat`` asks for it), the verifier scores each attempt, and the kept repair (the
verified one with the smallest edit) is aligned with the failure: the step holding the first
change is the located first error. The failure row records that step, ``decided_by`` and the
tokens spent, plus the repair's completion, reward, changed spans and edit size.

A replayed rollout (one that restarted from an archived prefix) is repaired as a whole: the
attempt shown is the archived prefix and the completion, the repair is a completion of the
problem's own prompt, and the diff runs over prefix + completion. A first change inside the
archived prefix leaves the failure unlocated (``repair_in_prefix``): the prefix is context,
not something this round trains.
"""

from __future__ import annotations

from rlint.config import ConfigError, Params
from rlint.engine import SamplingRequest
from rlint.repair import align, choose_repair, flatten_spans, repairable, step_of

# the repair columns of a failure row; search strategies and unrepaired failures keep these values
NO_REPAIR = {"repair_token_ids": None, "repair_logprobs": None, "repair_completion": None, "repair_reward": None, "changed_spans": None,
             "repair_changed_spans": None, "edit_size": None, "repair_attempts": 0, "repair_verified": 0}


def check_repair_chat(task, tokenizer, checkpoint) -> None:
    """``task.repair_chat`` needs a tokenizer with a chat template: refuse it before anything is sampled."""
    if getattr(task, "repair_chat", False) and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"task.repair_chat: true, but the tokenizer of {checkpoint} has no chat template (set task.repair_chat: false)")


def repair_prompt_ids(task, tokenizer, problem_id: str, prompt: str, attempt: str) -> list[int]:
    """Token ids of the repair prompt of one failed attempt (chat-wrapped when the task asks for it)."""
    text = task.repair_prompt(problem_id, prompt, attempt)
    if getattr(task, "repair_chat", False):
        text = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def model_context(engine) -> int | None:
    """Tokens the engine's model can attend to (prompt and completion together); None when unknown."""
    if getattr(engine, "max_model_len", None):
        return int(engine.max_model_len)
    model = getattr(engine, "model", None)
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def _row(row: dict, round_id: int, decided_by: str, first_error_step: int | None = None, attempts: list | None = None, **repair) -> dict:
    attempts = attempts or []
    return {
        "failure_id": row["rollout_id"], "rollout_id": row["rollout_id"], "round": round_id, "policy_version": round_id - 1,
        "problem_id": row["problem_id"], "n_steps": len(row["step_ends"]), "first_error_step": first_error_step,
        "value_before": None, "value_after": None, "probe_steps": [], "probe_values": [], "decided_by": decided_by,
        "continuations_spent": len(attempts), "tokens_spent": sum(len(a.token_ids) for a in attempts),
        "true_first_error_step": row["true_first_error_step"],
        **NO_REPAIR, "repair_attempts": len(attempts), **repair,
    }


def identify_by_repair(rows: list[dict], engine, task, params: Params, seed: int, round_id: int) -> list[dict]:
    """Failure rows (the ``failures`` schema) of the failed rollouts ``rows``, identified by repair.

    ``decided_by``: "repair" (located), "repair_unverified" (no attempt verified), "repair_rewrite"
    (verified attempts all edited more than ``mine.repair_max_edit``), "repair_in_prefix",
    "repair_truncated" (the failure was cut by the length limit: not repaired) or "no_steps".
    Raises ConfigError, before sampling, when a repair prompt does not fit the model's context.
    """
    tokenizer, context = engine.tokenizer, model_context(engine)
    planned, prompts = [], []
    for row in rows:
        if not row["step_ends"] or not repairable(row["finish_reason"]):
            continue
        n_prefix = row["prefix_token_count"]
        prefix = list(row["prompt_token_ids"][len(row["prompt_token_ids"]) - n_prefix:]) if n_prefix else []
        ids = repair_prompt_ids(task, tokenizer, row["problem_id"], row["prompt"], engine.decode(prefix + list(row["token_ids"])))
        if context is not None and len(ids) >= context:
            key = "task.repair_template" if task.name == "dataset" else "sampling.max_new_tokens"
            raise ConfigError(f"{key}: the repair prompt of failure {row['rollout_id']} has {len(ids)} tokens, the model's context is {context}")
        planned.append((row, prefix))
        prompts.append(ids)
    drawn = []
    if prompts:
        request = SamplingRequest(prompts=prompts, n=params.mine.repair_samples, temperature=params.mine.temperature, top_p=params.sampling.top_p,
                                  max_new_tokens=params.sampling.max_new_tokens, seed=seed)
        drawn = engine.generate(request, desc="repair")
    out = {row["rollout_id"]: _row(row, round_id, "no_steps" if not row["step_ends"] else "repair_truncated") for row in rows}
    for (row, prefix), ids, attempts in zip(planned, prompts, drawn):
        budget = params.sampling.max_new_tokens if context is None else min(params.sampling.max_new_tokens, context - len(ids))
        for attempt in attempts:  # what would not fit the context is cut, as the vLLM engine cuts it
            attempt.token_ids, attempt.logprobs = attempt.token_ids[:budget], attempt.logprobs[:budget]
        failed = prefix + list(row["token_ids"])
        texts = [engine.decode(a.token_ids) for a in attempts]
        rewards = [task.reward(text, row["answer"]) for text in texts]
        alignments = [align(failed, a.token_ids) for a in attempts]
        kept, verdict = choose_repair(rewards, alignments, params.mine.repair_max_edit)
        verified = sum(r == 1.0 for r in rewards)
        if kept is None:
            out[row["rollout_id"]] = _row(row, round_id, f"repair_{verdict}", None, attempts, repair_verified=verified)
            continue
        a, chosen = alignments[kept], attempts[kept]
        first = a.first_change - len(prefix)
        shifted = tuple((max(s - len(prefix), 0), e - len(prefix)) for s, e in a.failed_spans if e > len(prefix))
        repair = {"repair_token_ids": list(chosen.token_ids), "repair_logprobs": list(chosen.logprobs), "repair_completion": texts[kept],
                  "repair_reward": rewards[kept], "changed_spans": flatten_spans(shifted), "repair_changed_spans": flatten_spans(a.repaired_spans),
                  "edit_size": a.edit_size, "repair_verified": verified}
        if first < 0:
            out[row["rollout_id"]] = _row(row, round_id, "repair_in_prefix", None, attempts, **repair)
        else:
            out[row["rollout_id"]] = _row(row, round_id, "repair", step_of(list(row["step_ends"]), first), attempts, **repair)
    return [out[row["rollout_id"]] for row in rows]


def repair_metrics(failures: list[dict]) -> dict:
    """``repair_tokens`` (generated by repair attempts), ``repair_attempted`` (failures given attempts) and
    ``repair_success`` (share of them whose repair passed every gate)."""
    attempted = [f for f in failures if f["repair_attempts"]]
    return {
        "repair_tokens": sum(f["tokens_spent"] for f in attempted),
        "repair_attempted": len(attempted),
        "repair_success": round(sum(f["repair_token_ids"] is not None and f["decided_by"] == "repair" for f in attempted) / len(attempted), 4)
        if attempted else None,
    }
