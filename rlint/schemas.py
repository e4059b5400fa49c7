"""The Parquet schema of each dataset, its id column and the rules its rows follow.

Ids tie rows together across stages and rounds::

    rollout_id  r<k>-<problem_id>-s<j>      sample j of a problem in round k
    failure_id  = rollout_id of the failed rollout
    continuation_id  <failure_id>-p<prefix steps>-c<i>
    branch_id   = continuation_id of the continuation that became a corrected branch; <failure_id>-repair for a repair
    example_id  = rollout_id or branch_id
    archive_id  = failure_id of an archived hard failure; replays of it carry it in ``rollouts``

``policy_version`` is the round of the checkpoint that sampled the row (0: the base policy).
Reading, writing and checking rows: rlint/data.py.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "5"  # 3: train_set per-row advantage summaries; 4: repair columns of failures, branches.kind; 5: repair attempts

_ids = pa.list_(pa.int32())
_floats = pa.list_(pa.float32())

SCHEMAS: dict[str, pa.Schema] = {
    "rollouts": pa.schema([
        ("rollout_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("sample_index", pa.int32()),
        ("prompt", pa.string()),
        ("answer", pa.string()),
        ("prompt_token_ids", _ids),
        ("token_ids", _ids),  # completion tokens
        ("logprobs", _floats),  # sampler log-probability of each completion token
        ("step_ends", _ids),  # exclusive end offset of each step in token_ids
        ("completion", pa.string()),
        ("finish_reason", pa.string()),
        ("reward", pa.float32()),  # 1 right, 0 wrong, null cannot be scored
        ("true_first_error_step", pa.int32()),  # ground truth (evaluation only), null if none or unknown;
        # for a replay, counted from the end of the archived prefix (0: the error is inside it)
        ("archive_id", pa.string()),  # the archive entry this rollout restarted from; null for a fresh problem
        ("archived_prefix_token_count", pa.int32()),  # archived prefix tokens at the end of prompt_token_ids (0 if fresh)
    ]),
    "failures": pa.schema([
        ("failure_id", pa.string()),
        ("rollout_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("n_steps", pa.int32()),
        ("first_error_step", pa.int32()),  # 1-based; null when not located
        ("value_before", pa.float32()),  # estimated value of the last good prefix
        ("value_after", pa.float32()),  # estimated value after the first wrong step
        ("probe_steps", _ids),  # prefixes (in steps) whose value was estimated, in probe order
        ("probe_values", _floats),  # their estimated values
        ("decided_by", pa.string()),  # search: "probe", "sibling", "oracle", "prompt_unsolved"; repair: "repair", "repair_unverified",
        # "repair_rewrite", "repair_in_prefix", "repair_truncated" (rlint/identify/repair.py); oracle repair: "oracle_repair", "oracle_none",
        # "oracle_in_prefix", "oracle_truncated", "oracle_unverified"; either: "no_steps"
        ("continuations_spent", pa.int32()),  # samples drawn to identify it (value-probe continuations or repair attempts)
        ("tokens_spent", pa.int32()),  # tokens those samples generated
        ("true_first_error_step", pa.int32()),
        # mine.strategy repair (null / 0 otherwise): the kept repair, a completion of the problem's own prompt
        ("repair_token_ids", _ids),
        ("repair_logprobs", _floats),  # sampled under the repair prompt; zeros for an oracle repair (credit recomputes them under the original prompt)
        ("repair_completion", pa.string()),
        ("repair_reward", pa.float32()),
        ("changed_spans", _ids),  # changed token ranges of the failed completion, flattened [start, end, ...]
        ("repair_changed_spans", _ids),  # changed token ranges of the repair, flattened
        ("edit_size", pa.float32()),  # changed tokens / failed tokens
        ("repair_attempts", pa.int32()),
        ("repair_verified", pa.int32()),  # attempts the verifier accepted
        ("repair_prompt_token_ids", _ids),  # the repair prompt the attempts were sampled after (null without attempts)
    ]),
    "continuations": pa.schema([
        ("continuation_id", pa.string()),
        ("failure_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("prefix_steps", pa.int32()),  # continued after this many steps of the failed rollout (a repair attempt: 0)
        ("prefix_token_count", pa.int32()),  # = step_ends[prefix_steps - 1], 0 for the prompt alone (a repair attempt: 0)
        ("token_ids", _ids),
        ("logprobs", _floats),
        ("completion", pa.string()),
        ("reward", pa.float32()),
        ("stage", pa.string()),  # "mine" or "correct"; "repair": a repair attempt, a completion of the failure's repair_prompt_token_ids
    ]),
    "branches": pa.schema([
        ("branch_id", pa.string()),
        ("failure_id", pa.string()),
        ("parent_rollout_id", pa.string()),
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("branch_step", pa.int32()),  # the branch replaces the parent from step branch_step + 1 on
        ("branch_token_offset", pa.int32()),  # parent completion tokens kept as context
        ("token_ids", _ids),
        ("logprobs", _floats),
        ("completion", pa.string()),
        ("reward", pa.float32()),
        ("value_before", pa.float32()),  # null for a repair
        ("kind", pa.string()),  # "search": a continuation from the last good prefix; "repair": the failure's verified repair (from the prompt)
    ]),
    "corrections": pa.schema([
        ("failure_id", pa.string()),
        ("round", pa.int32()),
        ("status", pa.string()),  # "corrected", "uncorrected" (a hard case), "unlocated"
        ("samples_spent", pa.int32()),  # continuations drawn by the correct stage itself
        ("n_branches", pa.int32()),
    ]),
    "archive": pa.schema([  # a full snapshot after the round: every entry ever archived (rlint/archive.py)
        ("archive_id", pa.string()),  # = failure_id of the failure that was archived
        ("round", pa.int32()),  # the snapshot's round
        ("origin_round", pa.int32()),
        ("problem_id", pa.string()),
        ("failure_id", pa.string()),
        ("prompt", pa.string()),  # the problem's own prompt
        ("answer", pa.string()),
        ("context_token_ids", _ids),  # prompt + last good prefix: where replays restart
        ("archived_prefix_token_count", pa.int32()),  # the archived prefix: completion tokens of the parent at the end of context_token_ids
        ("prefix_steps", pa.int32()),  # steps of the parent kept (0: the prompt alone)
        ("reason", pa.string()),  # "uncorrected" or "unlocated"
        ("status", pa.string()),  # "open", "solved" or "retired"
        ("replays", pa.int32()),  # rounds that restarted from it
        ("solved_round", pa.int32()),  # null unless solved
        ("true_first_error_step", pa.int32()),  # of the parent rollout (evaluation only)
    ]),
    "train_set": pa.schema([
        ("example_id", pa.string()),
        ("kind", pa.string()),  # "rollout", "branch", "continuation" (a mining sample from a good prefix), "repair" (context: the original
        # prompt) or "repair_attempt" (context: the repair prompt; credit.repairer_weight)
        ("rollout_id", pa.string()),  # the rollout, or the branch's parent
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("context_token_ids", _ids),  # prompt (+ parent prefix for a branch): no loss
        ("token_ids", _ids),  # trained tokens
        ("logprobs", _floats),  # sampler log-probabilities of token_ids
        ("advantages", _floats),  # per-token advantage
        ("loss_weights", _floats),  # per-token weight, 0 masks the token
        ("reward", pa.float32()),
        ("sft", pa.bool_()),  # passed the task's format gate and its verifier: eligible for the supervised loss
        # the row's advantages over its trained tokens (loss weight > 0), so readers need not decode the lists
        ("trained_tokens", pa.int32()),
        ("advantage_sum", pa.float64()),
        ("advantage_sum_sq", pa.float64()),
        ("positive_tokens", pa.int32()),  # trained tokens with advantage > 0
        ("negative_tokens", pa.int32()),  # trained tokens with advantage < 0
        ("advantage_min", pa.float32()),  # null when no token is trained
        ("advantage_max", pa.float32()),
    ]),
    "eval": pa.schema([
        ("round", pa.int32()),
        ("policy_version", pa.int32()),
        ("problem_id", pa.string()),
        ("prompt", pa.string()),
        ("answer", pa.string()),
        ("completion", pa.string()),
        ("reward", pa.float32()),
        ("true_first_error_step", pa.int32()),
    ]),
}

SORT_KEYS = {
    "rollouts": "rollout_id", "failures": "failure_id", "continuations": "continuation_id",
    "branches": "branch_id", "corrections": "failure_id", "archive": "archive_id", "train_set": "example_id", "eval": "problem_id",
}

# per-token (or per-probe) lists that must be as long as another list of the same row
ALIGNED = {
    "rollouts": [("logprobs", "token_ids")],
    "continuations": [("logprobs", "token_ids")],
    "branches": [("logprobs", "token_ids")],
    "failures": [("probe_values", "probe_steps"), ("repair_logprobs", "repair_token_ids")],
    "train_set": [("logprobs", "token_ids"), ("advantages", "token_ids"), ("loss_weights", "token_ids")],
}
REWARDED = ("rollouts", "continuations", "branches", "eval")  # reward: 1 right, 0 wrong, null unscorable
