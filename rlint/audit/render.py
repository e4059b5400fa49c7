"""The audit as text: the terminal summary (tables per section) and lineage chains.

Plots and the HTML report are in :mod:`rlint.audit.plots` (matplotlib is imported only there).
"""

from __future__ import annotations

import json

import polars as pl

from rlint.audit.lineage import Link
from rlint.audit.summary import Audit

NA = "n/a"

# Sections of the per-round tables: (title, [(header, column, format)])
SECTIONS = [
    ("Outcomes", [
        ("round", "round", "{}"), ("policy", "policy_version", "{}"), ("heldout_acc", "heldout_accuracy", "{:.3f}"),
        ("sound_acc", "sound_accuracy", "{:.3f}"), ("train_acc", "train_accuracy", "{:.3f}"), ("right_via_wrong", "right_through_wrong_share", "{:.3f}"), ("failure_rate", "failure_rate", "{:.3f}"),
        ("rollouts", "rollouts", "{}"), ("failures", "failures", "{}"),
    ]),
    ("Mining and correction", [
        ("round", "round", "{}"), ("located", "failures_located", "{}"), ("loc_acc", "localization_accuracy", "{:.3f}"),
        ("checked", "localization_checked", "{}"), ("err_step", "first_error_step_mean", "{:.2f}"),
        ("err_pos", "first_error_position_mean", "{:.2f}"), ("cont/failure", "continuations_per_failure", "{:.1f}"),
        ("tokens/failure", "mining_tokens_per_failure", "{:.0f}"), ("corr_yield", "correction_yield", "{:.3f}"),
        ("corr_samples", "correction_samples_per_failure", "{:.1f}"), ("branches", "corrected_branches", "{}"),
    ]),
    ("Archive of hard prefixes", [
        ("round", "round", "{}"), ("archive", "archive_size", "{}"), ("solved", "archive_solved", "{}"),
        ("newly_solved", "archive_newly_solved", "{}"),
    ]),
    ("Training", [
        ("round", "round", "{}"), ("trained_tokens", "trained_tokens", "{}"), ("adv_mean", "advantage_mean", "{:+.4f}"),
        ("adv_std", "advantage_std", "{:.4f}"), ("lp_mismatch", "logprob_mismatch", "{:.3g}"),
        ("lp_mismatch_max", "logprob_mismatch_max", "{:.3g}"),
    ]),
]
ADVANTAGE_SECTION = ("Advantages of trained tokens, by kind", [
    ("round", "round", "{}"), ("kind", "kind", "{}"), ("tokens", "tokens", "{}"), ("mean", "advantage_mean", "{:+.4f}"),
    ("std", "advantage_std", "{:.4f}"), ("positive", "positive_token_share", "{:.3f}"),
    ("negative", "negative_token_share", "{:.3f}"), ("min", "advantage_min", "{:+.3f}"), ("max", "advantage_max", "{:+.3f}"),
])
NOTES = {
    "sound_acc": "held-out answers right with every step right", "right_via_wrong": "right rollouts that pass through a wrong step",
    "err_step": "mean first wrong step (1-based)", "err_pos": "mean first wrong step / steps",
    "corr_samples": "correction samples per located failure", "checked": "located failures with a known true first error",
}


def _cell(value, fmt: str) -> str:
    return NA if value is None else fmt.format(value)


def table_cells(frame: pl.DataFrame, columns: list[tuple[str, str, str]]) -> list[list[str]]:
    """Header row, then one row of formatted cells per frame row ("n/a" for nulls and absent columns)."""
    rows = [[h for h, _, _ in columns]]
    for record in frame.to_dicts():
        rows.append([_cell(record.get(col), fmt) for _, col, fmt in columns])
    return rows


def first_error_cells(audit: Audit) -> list[list[str]]:
    """Share of each round's failures per first wrong step, and not located."""
    dist = audit.first_errors
    steps = sorted(s for s in dist["first_error_step"].unique().to_list() if s is not None)
    rows = [["round"] + [f"step{s}" for s in steps] + ["unlocated", "failures"]]
    for k in sorted(dist["round"].unique().to_list()):
        part = dict(zip(*dist.filter(pl.col("round") == k).select("first_error_step", "share").to_dict(as_series=False).values()))
        total = int(dist.filter(pl.col("round") == k)["failures"].sum())
        rows.append([str(k)] + [f"{part.get(s, 0.0):.3f}" for s in steps] + [f"{part.get(None, 0.0):.3f}", str(total)])
    return rows


def _text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)


def sections(audit: Audit) -> list[tuple[str, list[list[str]]]]:
    """Every table of the summary as (title, cells)."""
    out = [(title, table_cells(audit.rounds, cols)) for title, cols in SECTIONS]
    out.append(("First wrong step (share of failures)", first_error_cells(audit)))
    title, cols = ADVANTAGE_SECTION
    out.append((title, table_cells(audit.advantages, cols)))
    return out


def format_summary(audit: Audit) -> str:
    rounds = audit.rounds["round"].to_list()
    lines = [f"rlint audit of {audit.origin}: {len(rounds)} round(s), {rounds[0]}..{rounds[-1]}"]
    for title, cells in sections(audit):
        lines += ["", title]
        lines.append(_text_table(cells) if len(cells) > 1 else NA)
    lines += ["", "; ".join(f"{k}: {v}" for k, v in NOTES.items()) + ". n/a: not recorded for that round."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Lineage


def _q(text) -> str:
    return NA if text is None else json.dumps(text)


def _n(value, fmt: str = "{}") -> str:
    return NA if value is None else fmt.format(value)


def format_lineage(chain: list[Link]) -> str:
    """The chain from the asked-for id back to its prompt, round and policy version, one line per link."""
    lines = [f"lineage of {chain[0].id}"]
    rollout = None
    for link in chain:
        r = link.row
        if link.dataset == "train_set":
            lines.append(f"  train example  {link.id}  kind {r['kind']}, round {r['round']}, reward {_n(r['reward'], '{:g}')}")
        elif link.dataset == "branches":
            lines.append(f"  branch         {link.id}  continues its parent after step {r['branch_step']} (token {r['branch_token_offset']}),"
                         f" value before {_n(r['value_before'], '{:.2f}')}, reward {_n(r['reward'], '{:g}')}")
            lines.append(f"                 completion {_q(r['completion'])}")
        elif link.dataset == "continuations":
            lines.append(f"  continuation   {link.id}  after {r['prefix_steps']} step(s) of the failure, stage {r['stage']},"
                         f" reward {_n(r['reward'], '{:g}')}")
            lines.append(f"                 completion {_q(r['completion'])}")
        elif link.dataset == "archive":
            solved = f"solved in round {r['solved_round']}" if r.get("status") == "solved" else _n(r.get("status"))
            lines.append(f"  archive        {link.id}  prefix of {_n(r.get('prefix_steps'))} step(s) from round {_n(r.get('origin_round'))},"
                         f" {solved}, replays {_n(r.get('replays'))} (snapshot after round {r['round']})")
        elif link.dataset == "failures":
            lines.append(f"  failure        {link.id}  first wrong step {_n(r['first_error_step'])} of {r['n_steps']}"
                         f" (true: {_n(r['true_first_error_step'])}), decided by {r['decided_by']},"
                         f" {r['continuations_spent']} continuations / {r['tokens_spent']} tokens")
        elif link.dataset == "rollouts":
            rollout = r
            lines.append(f"  rollout        {link.id}  sample {r['sample_index']} of problem {r['problem_id']},"
                         f" reward {_n(r['reward'], '{:g}')}, finish {r['finish_reason']}")
            lines.append(f"                 completion {_q(r['completion'])}")
    if rollout is not None:
        lines.append(f"  prompt         {rollout['problem_id']}  {_q(rollout['prompt'])}, answer {_q(rollout['answer'])}")
        lines.append(f"  round {rollout['round']}, sampled by policy_version {rollout['policy_version']}"
                     f" (checkpoints/round={rollout['policy_version']})")
    return "\n".join(lines)
