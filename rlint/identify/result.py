"""What every identify strategy returns: ``failures`` rows, ``continuations`` rows and the sampling levels used.

A failure row has the same columns whatever located it (rlint/data.py, ``failures``): a
strategy fills its own columns through :func:`failure_row` and leaves the others' at their
"not used" values (:data:`NO_SEARCH`, :data:`NO_REPAIR`), so no strategy sets another's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# the search columns of a failure row; repair strategies keep these values
NO_SEARCH = {"value_before": None, "value_after": None, "probe_steps": [], "probe_values": []}
# the repair columns of a failure row; search strategies and unrepaired failures keep these values
NO_REPAIR = {"repair_token_ids": None, "repair_logprobs": None, "repair_completion": None, "repair_reward": None, "changed_spans": None,
             "repair_changed_spans": None, "edit_size": None, "repair_attempts": 0, "repair_verified": 0, "repair_prompt_token_ids": None}


@dataclass
class Identified:
    """What an identify strategy returns: one ``failures`` row per chosen failure, the ``continuations`` rows it sampled, and sampling levels used."""

    failures: list[dict] = field(default_factory=list)
    continuations: list[dict] = field(default_factory=list)
    levels: int = 0


def failure_row(rollout: dict, round_id: int, decided_by: str, first_error_step: int | None = None, continuations_spent: int = 0,
                tokens_spent: int = 0, **columns) -> dict:
    """The ``failures`` row of the failed rollout ``rollout``; ``columns`` sets a strategy's own search or repair columns."""
    return {
        "failure_id": rollout["rollout_id"], "rollout_id": rollout["rollout_id"], "round": round_id, "policy_version": round_id - 1,
        "problem_id": rollout["problem_id"], "n_steps": len(rollout["step_ends"]), "first_error_step": first_error_step,
        **NO_SEARCH, "decided_by": decided_by, "continuations_spent": continuations_spent, "tokens_spent": tokens_spent,
        "true_first_error_step": rollout["true_first_error_step"], **NO_REPAIR, **columns,
    }
