"""The central claim, measured: ``internalized`` against ``outcome`` and ``oracle`` at equal generated tokens.

Each (mode, seed) campaign starts from the same base policy in a workspace of its own and runs
the real stages round after round, in process (rlint/round.py), until its generated tokens reach the budget.
Generated tokens are everything a mode sampled to learn: rollouts, mining continuations and
correction samples (held-out evaluation is measurement and does not count).

The accounting and the summary are pure functions over per-round records (one dict per
(mode, seed, round)): :func:`accuracy_at`, :func:`mode_curves`, :func:`summarize`.
:func:`run_campaign` is the I/O part. ``scripts/bench_modes.py`` is the command.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import yaml

from rlint.round import run_round, start_archive

MODES_ORDER = ("outcome", "internalized", "internalized_repair", "internalized_repair_refined", "oracle", "oracle_repair")
# a benchmark's mode label -> (params.yaml ``mode``, the parameters that make the label); the label's
# parameters win over --set / --set-mode. ``oracle`` is the search family's oracle whatever the base
# strategy (as before the oracle repair existed); ``*_repair`` are the repair family (docs/method.md, "Modes").
REPAIR = {"mine.strategy": "repair", "credit.estimator": "repair_diff"}
MODE_LABELS = {
    "outcome": ("outcome", {}),
    "internalized": ("internalized", {}),
    "internalized_repair": ("internalized", REPAIR),
    # the repairer trained on its own attempts too: several attempts per failure at the loss's temperature, group-normalised
    "internalized_repair_refined": ("internalized", {**REPAIR, "credit.repairer_weight": 1.0, "mine.repair_temperature": 1.0, "mine.repair_samples": 4}),
    "oracle": ("oracle", {"mine.strategy": "search"}),
    "oracle_repair": ("oracle", REPAIR),
}
ORACLES = ("oracle", "oracle_repair")
# the oracle each label's gap is closed towards: the first of these that ran (the upper bound of its own identify family first)
GAP_ORACLES = {"internalized_repair": ("oracle_repair", "oracle"), "internalized_repair_refined": ("oracle_repair", "oracle")}

log = logging.getLogger(__name__)


# -- pure: curves and summary ---------------------------------------------------------------------
def accuracy_at(records: list[dict], budget: float, key: str = "heldout_accuracy") -> float | None:
    """Held-out accuracy (or the figure ``key``, e.g. ``sound_accuracy``) of one campaign with at most ``budget`` generated tokens spent.

    records: one campaign's rounds (round 0 included, ``cumulative_tokens`` 0), any order. The
    accuracy is that of the last policy whose round finished within the budget (a step function:
    a round that would overshoot the budget has not happened yet). None where that record lacks ``key``
    (records written before it existed).

    >>> accuracy_at([{"cumulative_tokens": 0, "heldout_accuracy": .3}, {"cumulative_tokens": 10, "heldout_accuracy": .5}], 9)
    0.3
    >>> accuracy_at([{"cumulative_tokens": 0, "heldout_accuracy": .3}], 9, "sound_accuracy") is None
    True
    """
    done = [r for r in records if r["cumulative_tokens"] <= budget]
    return max(done, key=lambda r: r["cumulative_tokens"]).get(key)


def mode_curves(records: list[dict], grid: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per mode, the held-out accuracy of each seed at each token budget of ``grid``.

    grid: (B,) token budgets. Returns ``{mode: {"per_seed": (S, B), "mean": (B,), "std": (B,),
    "sem": (B,), "min": (B,), "max": (B,)}}`` with S the mode's seeds; ``std`` is the sample
    standard deviation over seeds (ddof 1; 0 for one seed), ``sem = std / sqrt(S)``.
    """
    out = {}
    for mode in _modes(records):
        seeds = sorted({r["seed"] for r in records if r["mode"] == mode})
        per_seed = np.array([[accuracy_at([r for r in records if r["mode"] == mode and r["seed"] == s], b) for b in grid] for s in seeds])
        std = per_seed.std(0, ddof=1) if len(seeds) > 1 else np.zeros(len(grid))
        out[mode] = {"per_seed": per_seed, "mean": per_seed.mean(0), "std": std, "sem": std / np.sqrt(len(seeds)),
                     "min": per_seed.min(0), "max": per_seed.max(0)}
    return out


def tokens_to_reach(grid: np.ndarray, mean_curve: np.ndarray, target: float) -> float | None:
    """The first budget of ``grid`` (B,) at which ``mean_curve`` (B,) reaches ``target``; None if never."""
    hits = np.nonzero(mean_curve >= target - 1e-12)[0]
    return float(grid[hits[0]]) if len(hits) else None


def final_figure(records: list[dict], budget: float, key: str) -> dict[str, dict]:
    """Per mode, ``key`` (``sound_accuracy``, ``right_through_wrong_share``) of each seed's last round within ``budget``:
    ``{mode: {"per_seed": [...], "mean": m, "std": s}}``, seeds without the figure (None, or older records) skipped;
    mean and std (sample, ddof 1; 0 for one seed) None when no seed has it.

    >>> final_figure([{"mode": "a", "seed": 0, "cumulative_tokens": 0, "sound_accuracy": .2},
    ...               {"mode": "a", "seed": 1, "cumulative_tokens": 0, "sound_accuracy": .4},
    ...               {"mode": "b", "seed": 0, "cumulative_tokens": 0}], 10, "sound_accuracy")["b"]
    {'per_seed': [], 'mean': None, 'std': None}
    """
    out = {}
    for mode in _modes(records):
        seeds = sorted({r["seed"] for r in records if r["mode"] == mode})
        values = [accuracy_at([r for r in records if r["mode"] == mode and r["seed"] == s], budget, key) for s in seeds]
        values = [float(v) for v in values if v is not None and v == v]  # a missing Parquet column reads as None (NaN from pandas)
        out[mode] = {"per_seed": values, "mean": float(np.mean(values)) if values else None,
                     "std": (float(np.std(values, ddof=1)) if len(values) > 1 else 0.0) if values else None}
    return out


def summarize(records: list[dict], budget: float) -> dict:
    """The benchmark's answer: final accuracies, tokens to reach outcome's final accuracy, gap closed.

    ``grid`` is every distinct cumulative token count of any campaign up to ``budget`` (plus 0 and
    the budget), so the step curves are exact. ``gaps_closed`` is
    ``(mode - outcome) / (oracle - outcome)`` of the mean final accuracies for each mode other than
    outcome and the oracles (None when that oracle is not above outcome), where the oracle is the
    mode's own (:data:`GAP_ORACLES`: ``oracle_repair`` for ``internalized_repair`` when it ran) or
    else ``oracle``; ``gap_oracles`` names it; ``gap_closed`` is that of ``internalized``.
    """
    grid = np.array(sorted({0.0, float(budget)} | {float(r["cumulative_tokens"]) for r in records if r["cumulative_tokens"] <= budget}))
    curves = mode_curves(records, grid)
    final = {mode: float(c["mean"][-1]) for mode, c in curves.items()}
    summary = {"budget": budget, "grid": grid, "curves": curves, "final_mean": final,
               "final_sound": final_figure(records, budget, "sound_accuracy"), "final_right_through_wrong": final_figure(records, budget, "right_through_wrong_share"),
               "final_std": {mode: float(c["std"][-1]) for mode, c in curves.items()},
               "final_sem": {mode: float(c["sem"][-1]) for mode, c in curves.items()}, "tokens_to_outcome_final": {},
               "gaps_closed": {}, "gap_oracles": {}, "gap_closed": None}
    if "outcome" in final:
        for mode, c in curves.items():
            summary["tokens_to_outcome_final"][mode] = tokens_to_reach(grid, c["mean"], final["outcome"])
    for mode in sorted(set(final) - {"outcome", *ORACLES}) if "outcome" in final else []:
        oracle = next((o for o in GAP_ORACLES.get(mode, ("oracle",)) if o in final), None)
        if oracle is None:
            continue
        above = final[oracle] > final["outcome"]
        summary["gaps_closed"][mode] = (final[mode] - final["outcome"]) / (final[oracle] - final["outcome"]) if above else None
        summary["gap_oracles"][mode] = oracle
    summary["gap_closed"] = summary["gaps_closed"].get("internalized")
    return summary


def summary_record(records: list[dict], summary: dict) -> dict:
    """The JSON form of a summary: per mode ``final_acc_mean``, ``final_acc_std`` (sample, over seeds),
    ``final_acc_sem``, ``seeds``, ``rounds_mean``, ``tokens_to_outcome_final`` and its share of the
    budget ``tokens_to_outcome_final_share`` (None: never reached), ``sound_acc_mean``, ``sound_acc_std`` and
    ``right_through_wrong_mean`` of the final policies (:func:`final_figure`; None where no record has them), and ``gap_closed`` (with the
    oracle it is measured against, ``gap_oracle``) for every mode that is neither outcome nor an oracle; ``differences``: each mode's final mean minus outcome's with
    its standard error ``sqrt(sem_mode^2 + sem_outcome^2)``."""
    budget = summary["budget"]
    modes = {}
    for mode, curve in summary["curves"].items():
        seeds = sorted({r["seed"] for r in records if r["mode"] == mode})
        rounds = [max(r["round"] for r in records if r["mode"] == mode and r["seed"] == s and r["cumulative_tokens"] <= budget) for s in seeds]
        reach = summary["tokens_to_outcome_final"].get(mode)
        modes[mode] = {"final_acc_mean": float(curve["mean"][-1]), "final_acc_std": float(curve["std"][-1]), "final_acc_sem": float(curve["sem"][-1]),
                       "final_acc_per_seed": [float(v) for v in curve["per_seed"][:, -1]], "seeds": seeds, "rounds_mean": float(np.mean(rounds)),
                       "tokens_to_outcome_final": reach, "tokens_to_outcome_final_share": None if reach is None else reach / budget,
                       "sound_acc_mean": summary["final_sound"][mode]["mean"], "sound_acc_std": summary["final_sound"][mode]["std"],
                       "right_through_wrong_mean": summary["final_right_through_wrong"][mode]["mean"]}
        if mode in summary["gaps_closed"]:
            modes[mode]["gap_closed"] = summary["gaps_closed"][mode]
            modes[mode]["gap_oracle"] = summary["gap_oracles"][mode]
    differences = {}
    if "outcome" in modes:
        for mode, entry in modes.items():
            if mode != "outcome":
                differences[f"{mode}-outcome"] = {"mean": entry["final_acc_mean"] - modes["outcome"]["final_acc_mean"],
                                                  "se": float(np.hypot(entry["final_acc_sem"], modes["outcome"]["final_acc_sem"]))}
    return {"budget": budget, "modes": modes, "differences": differences}


def summary_table(records: list[dict], summary: dict) -> str:
    """A plain-text table: per mode, seeds, rounds run, final accuracy (mean ± std, min–max), tokens to reach outcome's final."""
    budget = summary["budget"]
    lines = [f"budget: {budget:,.0f} generated tokens per campaign (rollouts + mining + correction)",
             f"{'mode':<20}{'seeds':>6}{'rounds':>8}{'final_acc':>11}{'std':>7}{'sem':>7}{'min':>7}{'max':>7}{'tokens_to_outcome_final':>25}{'share_of_budget':>17}"
             f"{'sound_acc':>11}{'std':>7}"]
    for mode, curve in summary["curves"].items():
        rounds = [max(r["round"] for r in records if r["mode"] == mode and r["seed"] == s and r["cumulative_tokens"] <= budget)
                  for s in sorted({r["seed"] for r in records if r["mode"] == mode})]
        reach = summary["tokens_to_outcome_final"].get(mode)
        reach_text = "never" if reach is None else f"{reach:,.0f}"
        share = "-" if reach is None else f"{reach / budget:.2f}"
        sound = summary["final_sound"][mode]
        sound_text = f"{'n/a':>11}{'':>7}" if sound["mean"] is None else f"{sound['mean']:>11.3f}{sound['std']:>7.3f}"
        lines.append(f"{mode:<20}{curve['per_seed'].shape[0]:>6}{np.mean(rounds):>8.1f}{curve['mean'][-1]:>11.3f}{curve['std'][-1]:>7.3f}"
                     f"{curve['sem'][-1]:>7.3f}{curve['min'][-1]:>7.3f}{curve['max'][-1]:>7.3f}{reach_text:>25}{share:>17}{sound_text}")
    for mode, gap in sorted(summary["gaps_closed"].items()):
        oracle = summary["gap_oracles"][mode]
        lines.append(f"gap closed by {mode} (outcome -> {oracle}, final means): " + (f"n/a ({oracle} not above outcome)" if gap is None else f"{gap:.2f}"))
    return "\n".join(lines)


def _modes(records: list[dict]) -> list[str]:
    present = {r["mode"] for r in records}
    return [m for m in MODES_ORDER if m in present] + sorted(present - set(MODES_ORDER))


# -- I/O: one campaign ----------------------------------------------------------------------------
def campaign_params(base: dict, mode: str, seed: int, max_rounds: int, overrides: dict | None = None) -> dict:
    """params.yaml content of one campaign: the base parameters, the overrides, the mode label's
    parameters (:data:`MODE_LABELS`; a name that is no label is taken as a params mode), the seed and the rounds."""
    params = copy.deepcopy(base)
    mode, label_overrides = MODE_LABELS.get(mode, (mode, {}))
    for key, value in {**(overrides or {}), **label_overrides}.items():
        section, _, field = key.partition(".")
        if field:
            params.setdefault(section, {})[field] = value
        else:
            params[section] = value
    params["mode"] = mode
    params["seed"] = seed
    params["rounds"] = {f"r{k}": {"id": k, "prev": k - 1} for k in range(1, max_rounds + 1)}
    return params


def round_tokens(metrics: dict[str, dict]) -> dict:
    """Generated tokens of one finished round from its stages' metrics (stage name -> the dict its ``run`` returned)."""
    tokens = {"rollout_tokens": metrics["rollout"]["generated_tokens"], "mining_tokens": metrics["mine"]["mining_tokens"],
              "correction_tokens": metrics["correct"]["correction_tokens"]}
    tokens["generated_tokens"] = sum(tokens.values())
    return tokens


def run_campaign(base: dict, mode: str, seed: int, budget: int, checkpoint: Path, base_eval: dict, workspace: Path,
                 max_rounds: int = 50, overrides: dict | None = None) -> list[dict]:
    """Run rounds of ``mode`` from ``checkpoint`` while they fit in ``budget`` generated tokens; one record per round (0 included).

    ``base_eval``: the base policy's evaluate metrics (``heldout_accuracy``, ``sound_accuracy``), round 0's record.

    A round is started while the tokens spent plus the last round's cost stay within the budget;
    the last round may still end past it (its record is kept, but the curves ignore it).
    """
    from rlint.config import load_params

    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    shutil.copytree(checkpoint, workspace / "checkpoints" / "round=0")
    (workspace / "params.yaml").write_text(yaml.safe_dump(campaign_params(base, mode, seed, max_rounds, overrides), sort_keys=False))
    params = load_params(workspace / "params.yaml")
    start_archive(params, workspace)
    records = [{"mode": mode, "seed": seed, "round": 0, "rollout_tokens": 0, "mining_tokens": 0, "correction_tokens": 0,
                "generated_tokens": 0, "cumulative_tokens": 0, "heldout_accuracy": base_eval["heldout_accuracy"],
                "sound_accuracy": base_eval.get("sound_accuracy"), "train_accuracy": None, "right_through_wrong_share": None, "seconds": 0.0}]
    spent, last_cost = 0, 0
    for round_id in range(1, max_rounds + 1):
        if spent + last_cost > budget:  # the next round would (by the last one's cost) end past the budget, where it does not count
            break
        started = time.monotonic()
        metrics = run_round(params, round_id, workspace)
        tokens = round_tokens(metrics)
        spent, last_cost = spent + tokens["generated_tokens"], tokens["generated_tokens"]
        records.append({"mode": mode, "seed": seed, "round": round_id, **tokens, "cumulative_tokens": spent,
                        "heldout_accuracy": metrics["evaluate"]["heldout_accuracy"], "sound_accuracy": metrics["evaluate"]["sound_accuracy"],
                        "train_accuracy": metrics["rollout"]["train_accuracy"], "right_through_wrong_share": metrics["rollout"]["right_through_wrong_share"],
                        "seconds": round(time.monotonic() - started, 1)})
        log.info("bench %s seed %d round %d: %s", mode, seed, round_id, records[-1])
    return records


def campaign_job(job: tuple) -> tuple[list[dict], float]:
    """One campaign in a worker process: ``job`` is :func:`run_campaign`'s arguments plus torch threads. Returns (records, seconds)."""
    base, mode, seed, budget, checkpoint, base_eval, workspace, max_rounds, overrides, threads = job
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    started = time.monotonic()
    records = run_campaign(base, mode, seed, budget, Path(checkpoint), base_eval, Path(workspace), max_rounds, overrides)
    return records, time.monotonic() - started


def plot_curves(summary: dict, path: Path, title: str) -> None:
    """Mean held-out accuracy against generated tokens per mode, the band min..max over seeds (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = summary["grid"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for mode, curve in summary["curves"].items():
        line, = ax.step(grid, curve["mean"], where="post", label=f"{mode} (mean of {curve['per_seed'].shape[0]} seeds)")
        ax.fill_between(grid, curve["min"], curve["max"], step="post", alpha=0.18, color=line.get_color())
    if "outcome" in summary["final_mean"]:
        ax.axhline(summary["final_mean"]["outcome"], color="grey", lw=0.8, ls=":", label="outcome's final accuracy")
    ax.set_xlabel("generated tokens (rollouts + mining + correction)")
    ax.set_ylabel("held-out accuracy (greedy)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
