"""Rollout rows, pure: the ``rollouts`` dataset's rows of sampled groups, fresh or replayed from the archive."""

from __future__ import annotations

from rlint.prompts import encode_prompt
from rlint.sequences import of_archive_entry
from rlint.steps import step_ends, token_texts


def rollout_contexts(engine, problems, replays: list[dict | None], task=None) -> list[list[int]]:
    """Token ids each group is sampled from: the encoded prompt (chat-wrapped when ``task`` asks), or an archive entry's prompt plus prefix."""
    return [encode_prompt(engine, task, p.prompt) if e is None else list(e["context_token_ids"]) for p, e in zip(problems, replays)]


def rollout_rows(engine, task, problems, samples, round_id: int, replays: list[dict | None] | None = None,
                 contexts: list[list[int]] | None = None) -> list[dict]:
    """Rows of the ``rollouts`` dataset for ``samples[i][j]`` = sample j of ``problems[i]``.

    ``replays[i]`` is the archive entry problem i restarts from (None: a fresh start);
    ``contexts[i]`` the token ids its group was sampled from (default: :func:`rollout_contexts`).
    """
    replays = replays or [None] * len(problems)
    contexts = contexts if contexts is not None else rollout_contexts(engine, problems, replays, task)
    rows = []
    for problem, group, entry, prompt_ids in zip(problems, samples, replays, contexts):
        archived = [] if entry is None else of_archive_entry(entry).archived_ids
        prefix_text = engine.decode(archived) if archived else ""
        prefix_steps = 0 if entry is None else entry["prefix_steps"]
        for index, sample in enumerate(group):
            completion = engine.decode(sample.token_ids)
            scored = prefix_text + completion
            true_step = task.first_error_step(problem, scored) if task.has_step_checker else None
            rows.append({
                "rollout_id": f"r{round_id}-{problem.problem_id}-s{index}",
                "round": round_id,
                "policy_version": round_id - 1,
                "problem_id": problem.problem_id,
                "sample_index": index,
                "prompt": problem.prompt + prefix_text,
                "answer": problem.answer,
                "prompt_token_ids": prompt_ids,
                "token_ids": sample.token_ids,
                "logprobs": sample.logprobs,
                "step_ends": step_ends(token_texts(engine.tokenizer, sample.token_ids), task.step_delimiter, task.merge_empty_steps),
                "completion": completion,
                "finish_reason": sample.finish_reason,
                "reward": task.reward(scored, problem.answer),
                "true_first_error_step": None if true_step is None else max(0, true_step - prefix_steps),
                "archive_id": None if entry is None else entry["archive_id"],
                "archived_prefix_token_count": len(archived),
            })
    return rows
