"""Where internalized supervision pays: every mode at several difficulty levels, at equal generated tokens.

A level is a set of parameter overrides (a chain length, a modulus, bootstrap steps...) with a base
policy of its own; at each level every mode runs the campaigns of rlint/bench_modes.py. The
records are bench_modes' records with a ``level`` column; the summary and the plot are pure
functions of them (:func:`sweep_summary`, :func:`plot_sweep`). ``scripts/bench_sweep.py`` is the command.
"""

from __future__ import annotations

import math
from pathlib import Path

from rlint.bench_modes import summarize, summary_record

SUMMARY_KEYS = ("final_acc_mean", "final_acc_std", "sound_acc_mean", "tokens_to_outcome_final_share", "seeds")


def parse_level(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:section.key=value,section.key=value`` -> ``(NAME, {"section.key": "value", ...})`` (values still YAML text).

    >>> parse_level("sparse:task.min_steps=6,bootstrap.steps=400")
    ('sparse', {'task.min_steps': '6', 'bootstrap.steps': '400'})
    >>> parse_level("plain")
    ('plain', {})
    """
    name, _, assignments = text.partition(":")
    if not name or "/" in name or "=" in name:
        raise ValueError(f"--level {text!r}: expected NAME:section.key=value,... with a plain NAME")
    overrides = {}
    for item in filter(None, assignments.split(",")):
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"--level {text!r}: {item!r} is not section.key=value")
        overrides[key.strip()] = value.strip()
    return name, overrides


def sweep_summary(records: list[dict], budget: float, levels: list[str]) -> dict:
    """Per level and mode, the figures of :data:`SUMMARY_KEYS` (and the rest of bench_modes' summary record).

    records: bench_modes records with a ``level`` key, any order; levels: the order to report.
    Returns ``{"budget": budget, "levels": {level: {"modes": {mode: {...}}, "differences": {...}}}}``.
    """
    out = {"budget": budget, "levels": {}}
    for level in levels:
        rows = [r for r in records if r["level"] == level]
        if not rows:
            continue
        record = summary_record(rows, summarize(rows, budget))
        out["levels"][level] = {"modes": record["modes"], "differences": record["differences"]}
    return out


def sweep_table(summary: dict) -> str:
    """One line per (level, mode): seeds, final accuracy mean ± std, sound accuracy, tokens to outcome's final (share of budget)."""
    lines = [f"budget: {summary['budget']:,.0f} generated tokens per campaign",
             f"{'level':<10}{'mode':<29}{'seeds':>6}{'final_acc':>11}{'std':>7}{'vs outcome':>17}{'sound_acc':>11}{'to_outcome_final':>18}"]
    for level, entry in summary["levels"].items():
        for mode, figures in entry["modes"].items():
            diff = entry["differences"].get(f"{mode}-outcome")
            diff_text = "" if diff is None else f"{diff['mean']:+.3f} ± {diff['se']:.3f}"
            sound = figures.get("sound_acc_mean")
            share = figures["tokens_to_outcome_final_share"]
            lines.append(f"{level:<10}{mode:<29}{len(figures['seeds']):>6}{figures['final_acc_mean']:>11.3f}{figures['final_acc_std']:>7.3f}"
                         f"{diff_text:>17}{'-' if sound is None else f'{sound:.3f}':>11}{'never' if share is None else f'{share:.2f}':>18}")
    return "\n".join(lines)


def plot_sweep(summary: dict, path: Path, title: str) -> None:
    """Three panels against level, one line per mode: final accuracy (± sem), sound accuracy, tokens to outcome's final (PNG).

    A mode that never reached outcome's final accuracy is drawn at 1.05 with an open marker.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = list(summary["levels"])
    modes = list(dict.fromkeys(m for entry in summary["levels"].values() for m in entry["modes"]))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), dpi=110, layout="constrained")
    x = range(len(levels))
    for mode in modes:
        def figure(key, level, mode=mode):
            value = summary["levels"][level]["modes"].get(mode, {}).get(key)
            return math.nan if value is None else value
        mean = [figure("final_acc_mean", lv) for lv in levels]
        sem = [figure("final_acc_sem", lv) for lv in levels]
        line, = axes[0].plot(x, mean, marker="o", label=mode)
        axes[0].errorbar(x, mean, yerr=sem, fmt="none", color=line.get_color(), capsize=3)
        axes[1].plot(x, [figure("sound_acc_mean", lv) for lv in levels], marker="o", color=line.get_color())
        shares = [figure("tokens_to_outcome_final_share", lv) for lv in levels]
        axes[2].plot(x, [1.05 if math.isnan(s) else s for s in shares], color=line.get_color(), ls="-", alpha=0.6)
        axes[2].scatter([i for i, s in enumerate(shares) if not math.isnan(s)], [s for s in shares if not math.isnan(s)], color=line.get_color())
        axes[2].scatter([i for i, s in enumerate(shares) if math.isnan(s)], [1.05] * sum(math.isnan(s) for s in shares),
                        facecolors="none", edgecolors=line.get_color())
    for ax, label in zip(axes, ("final held-out accuracy (± sem)", "final sound accuracy (every step right)", "tokens to outcome's final / budget")):
        ax.set_xticks(list(x), levels)
        ax.set_xlabel("level")
        ax.set_ylabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[2].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[2].text(0, 1.07, "open: never", fontsize=7)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
