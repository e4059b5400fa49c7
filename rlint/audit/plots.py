"""The audit as pictures: per-round curves (matplotlib, Agg), SVG files for ``dvc plots show``, one HTML report.

The HTML report is one self-contained file: the summary tables and every figure as a base64 PNG;
it loads nothing from elsewhere (no scripts, styles or fonts), so it opens offline. The same
figures are written as SVG files, the image plots that ``dvc.yaml`` declares.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from rlint.audit.render import NA, NOTES, sections  # noqa: E402
from rlint.audit.summary import Audit  # noqa: E402

# fixed SVG ids and no dates: the same audit gives the same bytes
plt.rcParams.update({"svg.hashsalt": "rlint-audit", "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})


def _round_axis(ax, rounds: list[int]) -> None:
    ax.set_xlabel("round")
    if rounds:
        ax.set_xticks(rounds if len(rounds) <= 20 else rounds[:: max(1, len(rounds) // 10)])
        ax.set_xlim(min(rounds) - 0.5, max(rounds) + 0.5)


def _curves(ax, frame: pl.DataFrame, columns: list[tuple[str, str]], ylabel: str) -> bool:
    """Plot each (column, label) against round; False (and "n/a" on the axes) when all are null."""
    drawn = False
    for column, label in columns:
        part = frame.select("round", column).drop_nulls() if column in frame.columns else pl.DataFrame()
        if part.height:
            ax.plot(part["round"].to_list(), part[column].to_list(), marker="o", label=label)
            drawn = True
    ax.set_ylabel(ylabel)
    _round_axis(ax, frame["round"].to_list())
    if drawn:
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, NA, transform=ax.transAxes, ha="center", va="center", fontsize=14, color="gray")
    return drawn


def _first_error_figure(ax, audit: Audit) -> None:
    dist = audit.first_errors
    rounds = audit.rounds["round"].to_list()
    if dist.is_empty():
        ax.text(0.5, 0.5, NA, transform=ax.transAxes, ha="center", va="center", fontsize=14, color="gray")
    else:
        steps = sorted(dist["first_error_step"].unique().to_list(), key=lambda s: (s is None, s))
        cmap = plt.get_cmap("viridis")
        bottom = {k: 0.0 for k in rounds}
        for i, step in enumerate(steps):
            part = dist.filter(pl.col("first_error_step").is_null() if step is None else pl.col("first_error_step") == step)
            shares = dict(zip(part["round"].to_list(), part["share"].to_list()))
            heights = [shares.get(k, 0.0) for k in rounds]
            color = "lightgray" if step is None else cmap(i / max(1, len(steps) - 1))
            ax.bar(rounds, heights, bottom=[bottom[k] for k in rounds], color=color, label="not located" if step is None else f"step {step}")
            for k, h in zip(rounds, heights):
                bottom[k] += h
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_ylabel("share of failures")
    _round_axis(ax, rounds)


def _advantage_figure(axes, audit: Audit) -> None:
    adv, rounds = audit.advantages, audit.rounds["round"].to_list()
    left, right = axes
    for kind, offset in (("rollout", -0.15), ("branch", 0.0), ("all", 0.15)):
        part = adv.filter(pl.col("kind") == kind)
        if part.height:
            mean, std = part["advantage_mean"].to_numpy(), part["advantage_std"].to_numpy()
            if len(rounds) <= 12:  # few rounds: error bars, side by side
                x = [k + offset for k in part["round"].to_list()]
                left.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=f"{kind} mean ± std")
            else:  # many rounds: a band
                x = part["round"].to_numpy()
                (line,) = left.plot(x, mean, marker=".", label=f"{kind} mean ± std")
                left.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            right.plot(part["round"].to_list(), part["positive_token_share"].to_list(), marker="^", label=f"{kind} > 0")
            right.plot(part["round"].to_list(), part["negative_token_share"].to_list(), marker="v", linestyle="--", label=f"{kind} < 0")
    for ax, ylabel in ((left, "advantage per trained token"), (right, "share of trained tokens")):
        ax.set_ylabel(ylabel)
        _round_axis(ax, rounds)
        if adv.height:
            ax.legend(loc="best", fontsize=7)
        else:
            ax.text(0.5, 0.5, NA, transform=ax.transAxes, ha="center", va="center", fontsize=14, color="gray")


def figures(audit: Audit) -> dict[str, tuple[str, plt.Figure]]:
    """name -> (title, figure) for every per-round curve of the report."""
    r = audit.rounds
    out: dict[str, tuple[str, plt.Figure]] = {}

    def new(name: str, title: str, ncols: int = 1, width: float = 6.4):
        fig, axes = plt.subplots(1, ncols, figsize=(width, 3.6), layout="constrained")
        fig.suptitle(title, fontsize=11)
        out[name] = (title, fig)
        return axes

    _curves(new("accuracy", "Accuracy"), r, [("heldout_accuracy", "held-out"), ("sound_accuracy", "held-out, every step right"),
                                             ("train_accuracy", "training batch"), ("right_through_wrong_share", "right rollouts through a wrong step")], "share")
    _curves(new("supervision", "Failures, localization, correction"), r,
            [("failure_rate", "failure rate"), ("localization_accuracy", "localization accuracy"), ("correction_yield", "correction yield")], "share")
    _first_error_figure(new("first_errors", "Where the first wrong step falls", width=7.4), audit)
    ax = new("mining_cost", "Mining cost per failure")
    _curves(ax, r, [("continuations_per_failure", "continuations (mining)"), ("correction_samples_per_failure", "samples (correction)")], "samples per failure")
    twin = ax.twinx()
    if "mining_tokens_per_failure" in r.columns and r["mining_tokens_per_failure"].drop_nulls().len():
        part = r.select("round", "mining_tokens_per_failure").drop_nulls()
        twin.plot(part["round"].to_list(), part["mining_tokens_per_failure"].to_list(), color="gray", linestyle=":", marker="s", label="tokens (mining)")
        twin.legend(loc="lower right", fontsize=8)
    twin.set_ylabel("tokens per failure")
    twin.grid(False)
    _curves(new("archive", "Archive of hard prefixes"), r,
            [("archive_size", "archived"), ("archive_solved", "solved by a later round"), ("archive_newly_solved", "solved this round")], "prefixes")
    _advantage_figure(new("advantages", "Advantages of trained tokens", ncols=2, width=11.0), audit)
    _curves(new("logprob_mismatch", "Sampler vs trainer log-probability"), r,
            [("logprob_mismatch", "mean |difference|"), ("logprob_mismatch_max", "max |difference|")], "nats")
    return out


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


Figures = dict[str, tuple[str, plt.Figure]]


@contextmanager
def _drawn(audit: Audit, figs: Figures | None):
    """The given figures, or new ones that are closed afterwards."""
    if figs is not None:
        yield figs
        return
    figs = figures(audit)
    try:
        yield figs
    finally:
        for _, fig in figs.values():
            plt.close(fig)


def write_plots(audit: Audit, folder: Path, figs: Figures | None = None) -> list[Path]:
    """The per-round curves as SVG files (DVC image plots) and the per-round table as ``rounds.json``."""
    written = []
    with _drawn(audit, figs) as drawn:
        for name, (_, fig) in drawn.items():
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata={"Date": None})
            path = folder / f"{name}.svg"
            _write_atomic(path, buffer.getvalue().encode())
            written.append(path)
    path = folder / "rounds.json"
    _write_atomic(path, (json.dumps(audit.rounds.to_dicts(), indent=1) + "\n").encode())
    return written + [path]


STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1300px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 3px 9px; text-align: right; border-bottom: 1px solid #eee; }
th { background: #f3f3f3; } td.na { color: #999; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; } .figs img { border: 1px solid #ddd; max-width: 100%; }
p.note { color: #555; font-size: 13px; }
"""


def _html_table(cells: list[list[str]]) -> str:
    if len(cells) <= 1:
        return f"<p class='note'>{NA}</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    body = "".join(
        "<tr>" + "".join(f"<td class='na'>{NA}</td>" if c == NA else f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(audit: Audit, figs: Figures | None = None) -> str:
    """One self-contained HTML page: the summary tables and every figure as an embedded PNG."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>rlint audit</title><style>{STYLE}</style></head><body>",
        "<h1>rlint audit</h1>",
        f"<p class='note'>{html.escape(audit.origin)}: {audit.rounds.height} round(s), {audit.rounds['round'].min()}..{audit.rounds['round'].max()}."
        " n/a: not recorded for that round.</p>",
        "<h2>Per-round curves</h2><div class='figs'>",
    ]
    with _drawn(audit, figs) as drawn:
        for name, (title, fig) in drawn.items():
            data = base64.b64encode(_png(fig)).decode()
            parts.append(f"<img id='fig-{name}' alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</div>")
    for title, cells in sections(audit):
        parts.append(f"<h2>{html.escape(title)}</h2>{_html_table(cells)}")
    parts.append("<p class='note'>" + "; ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in NOTES.items()) + ".</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(audit: Audit, path: Path, figs: Figures | None = None) -> Path:
    _write_atomic(Path(path), render_html(audit, figs).encode())
    return Path(path)


def write_outputs(audit: Audit, plots: Path | None, html_path: Path | None) -> list[Path]:
    """Draw the figures once; write the SVG plot files and/or the HTML report."""
    figs = figures(audit)
    try:
        written = write_plots(audit, plots, figs) if plots is not None else []
        if html_path is not None:
            written.append(write_html(audit, html_path, figs))
        return written
    finally:
        for _, fig in figs.values():
            plt.close(fig)
