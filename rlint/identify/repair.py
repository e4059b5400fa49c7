"""Identify by repair: sampling, prompts and failure rows (the method and its gates: rlint/repair.py).

Each chosen failure gets ``mine.repair_samples`` repair attempts from the round's sampling
policy at ``mine.repair_temperature``, in one batched call: the task writes the repair prompt (the embedded task's compact
format, or ``task.repair_template`` wrapped in the model's chat template when
``task.repair_chat`` asks for it), the verifier scores each attempt, and the kept repair (the
verified one with the smallest edit) is aligned with the failure: the step holding the first
change is the located first error. The failure row records that step, ``decided_by`` and the
tokens spent, plus the repair's completion, reward, changed spans and edit size, and the repair
prompt's token ids. Every attempt is also a ``continuations`` row (``stage: "repair"``, a completion
of that repair prompt), which the credit stage trains when ``credit.repairer_weight`` > 0.

A replayed rollout (one that restarted from an archived prefix) is repaired as a whole: the
attempt shown is the archived prefix and the completion, the repair is a completion of the
problem's own prompt, and the diff runs over prefix + completion. A first change inside the
archived prefix leaves the failure unlocated (``repair_in_prefix``): the prefix is context,
not something this round trains.

In mode ``oracle`` the repair is the oracle's (:func:`identify_by_oracle_repair`): the reference
chain from the true first error on, nothing sampled; it is credited exactly like a self-repair.
"""

from __future__ import annotations

import math

from rlint.config import ConfigError, Params
from rlint.engine import SamplingRequest
from rlint.identify.result import Identified, failure_row
from rlint.repair import Alignment, align, choose_repair, flatten_spans, gate, oracle_repair, reference_tail, repairable, step_of
from rlint.sequences import of_rollout
from rlint.steps import prefix_offset, step_char_ends
from rlint.tasks.base import Problem


def identify(failures: list[dict], rollouts: list[dict], engine, task, params: Params, seed: int, round_id: int) -> Identified:
    """The policy repairs each failed rollout of ``failures``, or in mode ``oracle`` the reference chain does from the true
    first error (nothing sampled, no engine started); the token difference locates the first error."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(engine.checkpoint)
    if params.mode == "oracle":
        return Identified(identify_by_oracle_repair(failures, task, tokenizer, round_id))
    check_repair_chat(task, tokenizer, engine.checkpoint)
    return identify_by_repair(failures, engine, task, params, seed, round_id)


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
    return failure_row(row, round_id, decided_by, first_error_step, len(attempts), sum(len(a.token_ids) for a in attempts),
                       repair_attempts=len(attempts), **repair)


def identify_by_repair(rows: list[dict], engine, task, params: Params, seed: int, round_id: int) -> Identified:
    """Failure rows (the ``failures`` schema) of the failed rollouts ``rows``, identified by repair, and
    the attempts as ``continuations`` rows (``stage: "repair"``, id ``<failure_id>-repair<j>``).

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
        prefix = of_rollout(row).archived_ids
        ids = repair_prompt_ids(task, tokenizer, row["problem_id"], row["prompt"], engine.decode(prefix + list(row["token_ids"])))
        if context is not None and len(ids) >= context:
            key = "task.repair_template" if task.name == "dataset" else "sampling.max_new_tokens"
            raise ConfigError(f"{key}: the repair prompt of failure {row['rollout_id']} has {len(ids)} tokens, the model's context is {context}")
        planned.append((row, prefix))
        prompts.append(ids)
    drawn = []
    if prompts:
        request = SamplingRequest(prompts=prompts, n=params.mine.repair_samples, temperature=params.mine.repair_temperature, top_p=params.sampling.top_p,
                                  max_new_tokens=params.sampling.max_new_tokens, seed=seed)
        drawn = engine.generate(request, desc="repair")
    out = {row["rollout_id"]: _row(row, round_id, "no_steps" if not row["step_ends"] else "repair_truncated") for row in rows}
    attempt_rows = []
    for (row, prefix), ids, attempts in zip(planned, prompts, drawn):
        budget = params.sampling.max_new_tokens if context is None else min(params.sampling.max_new_tokens, context - len(ids))
        for attempt in attempts:  # what would not fit the context is cut, as the vLLM engine cuts it
            attempt.token_ids, attempt.logprobs = attempt.token_ids[:budget], attempt.logprobs[:budget]
        failed = prefix + list(row["token_ids"])
        texts = [engine.decode(a.token_ids) for a in attempts]
        rewards = [task.reward(text, row["answer"]) for text in texts]
        alignments = [align(failed, a.token_ids) for a in attempts]
        attempt_rows += [{"continuation_id": f"{row['rollout_id']}-repair{j}", "failure_id": row["rollout_id"], "round": round_id,
                          "policy_version": round_id - 1, "prefix_steps": 0, "prefix_token_count": 0, "token_ids": list(a.token_ids),
                          "logprobs": list(a.logprobs), "completion": text, "reward": reward, "stage": "repair"}
                         for j, (a, text, reward) in enumerate(zip(attempts, texts, rewards))]
        kept, verdict = choose_repair(rewards, alignments, params.mine.repair_max_edit)
        verified = sum(r == 1.0 for r in rewards)
        if kept is None:
            out[row["rollout_id"]] = _row(row, round_id, f"repair_{verdict}", None, attempts, repair_verified=verified, repair_prompt_token_ids=ids)
            continue
        chosen = attempts[kept]
        out[row["rollout_id"]] = _located(row, round_id, "repair", len(prefix), alignments[kept], list(chosen.token_ids), list(chosen.logprobs),
                                          texts[kept], rewards[kept], attempts, repair_verified=verified, repair_prompt_token_ids=ids)
    return Identified([out[row["rollout_id"]] for row in rows], attempt_rows)


def _located(row: dict, round_id: int, decided_by: str, n_prefix: int, a: Alignment, repair_ids: list[int], repair_logprobs: list[float],
             text: str, reward: float, attempts: list | None = None, **extra) -> dict:
    """The failure row of a kept repair: spans shifted past the archived prefix (``n_prefix`` tokens), the step of the first change."""
    first = a.first_change - n_prefix
    shifted = tuple((max(s - n_prefix, 0), e - n_prefix) for s, e in a.failed_spans if e > n_prefix)
    repair = {"repair_token_ids": repair_ids, "repair_logprobs": repair_logprobs, "repair_completion": text, "repair_reward": reward,
              "changed_spans": flatten_spans(shifted), "repair_changed_spans": flatten_spans(a.repaired_spans), "edit_size": a.edit_size, **extra}
    if first < 0:
        return _row(row, round_id, f"{decided_by}_in_prefix", None, attempts, **repair)
    return _row(row, round_id, decided_by, step_of(list(row["step_ends"]), first), attempts, **repair)


def identify_by_oracle_repair(rows: list[dict], task, tokenizer, round_id: int) -> list[dict]:
    """Failure rows of the failed rollouts ``rows`` repaired by the oracle (mode ``oracle``, ``mine.strategy: repair``).

    The repair is the failure's tokens before its true first error (``true_first_error_step``;
    an archived prefix included, as a self-repair is a completion of the problem's own prompt),
    then the reference chain's tokens from there (``task.solution``) and eos. Nothing is sampled:
    ``tokens_spent`` 0, no attempts. It is diffed like a self-repair, so the changed spans, the
    edit size and the located step (the step of the first change) come out the same way; the
    located step is the true first error, except for a missing line after the last step, where
    the first change is the failure's eos, which belongs to its last step.

    Gates: the repair must verify (it does by construction; ``oracle_unverified`` guards it) and
    change something; it is not gated by ``mine.repair_max_edit`` (an upper bound does not refuse
    its own repairs). A failure cut by the length limit is not repaired, as for a self-repair (the
    step checker reads a cut line as wrong). ``repair_logprobs`` are zeros: a repair's "old"
    log-probabilities are recomputed under the original prompt by the credit stage whatever
    produced it (rlint/credit_scores.py ``repair_old_logprobs``), so the optimize ratio starts at 1.

    ``decided_by``: "oracle_repair" (located), "oracle_none" (no true first error), "oracle_in_prefix"
    (the true first error is inside the archived prefix), "oracle_truncated", "oracle_unverified"
    or "no_steps".
    """
    out = []
    for row in rows:
        true_step, ends = row["true_first_error_step"], list(row["step_ends"])
        refused = ("no_steps" if not ends else "oracle_truncated" if not repairable(row["finish_reason"])
                   else "oracle_none" if true_step is None else "oracle_in_prefix" if true_step == 0 else None)
        if refused:
            out.append(_row(row, round_id, refused))
            continue
        view = of_rollout(row)
        prefix, n_prefix = view.archived_ids, len(view.archived_ids)
        failed = view.scored_ids
        good = min(true_step - 1, len(ends))
        if good and tokenizer.decode(failed[:n_prefix + prefix_offset(ends, good)], skip_special_tokens=True)[-len(task.step_delimiter):] != task.step_delimiter:
            good -= 1  # an unfinished last line (no delimiter) is rewritten from its start
        keep = n_prefix + prefix_offset(ends, good)
        good_text = tokenizer.decode(failed[:keep], skip_special_tokens=True)
        problem = Problem(row["problem_id"], row["prompt"][:len(row["prompt"]) - len(tokenizer.decode(prefix, skip_special_tokens=True))], row["answer"])
        tail = reference_tail(task.solution(problem), len(step_char_ends(good_text, task.step_delimiter, task.merge_empty_steps)),
                              task.step_delimiter, task.merge_empty_steps)
        repaired, a = oracle_repair(failed, keep, tokenizer(tail, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id)
        text = tokenizer.decode(repaired, skip_special_tokens=True)
        reward = task.reward(text, row["answer"])
        verdict = gate(reward, a, math.inf)
        if verdict is not None:
            out.append(_row(row, round_id, f"oracle_{verdict}"))
            continue
        out.append(_located(row, round_id, "oracle_repair", n_prefix, a, repaired, [0.0] * len(repaired), text, reward))
    return out


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
