"""``rlint audit``: read the rounds, compute the audit, print it and write the requested files."""

from __future__ import annotations

from pathlib import Path

from rlint.audit.lineage import lineage
from rlint.audit.sources import open_inputs
from rlint.audit.summary import audit


def run_audit(root: Path, rev: str | None = None, html: Path | None = None, lineage_id: str | None = None, plots: Path | None = None,
              cache: bool = True) -> int:
    """Print the summary (or the lineage of ``lineage_id``); write the HTML report and the DVC plot files.

    Plots (matplotlib) are drawn only when asked for: ``plots`` (SVG files for ``dvc plots show``)
    or ``html``. ``cache``: per-round advantage moments in ``ROOT/audit/cache`` (workspace only).
    """
    from rlint.audit.render import format_lineage, format_summary

    with open_inputs(root, rev, cache=cache and lineage_id is None) as inputs:
        if lineage_id is not None:
            print(format_lineage(lineage(inputs, lineage_id)))
            return 0
        result = audit(inputs)
    print(format_summary(result))
    if plots is not None or html is not None:
        from rlint.audit.plots import write_outputs

        written = write_outputs(result, plots, html)
        if plots is not None:
            print(f"\nper-round curves: {sum(p.parent == plots for p in written)} files in {plots} (`dvc plots show`)")
        if html is not None:
            print(f"HTML report: {html}")
    return 0
