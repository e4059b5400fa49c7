"""``rlint audit``: read the rounds, compute the audit, print it and write the requested files."""

from __future__ import annotations

from pathlib import Path

from rlint.audit import audit, lineage
from rlint.audit_sources import open_inputs


def run_audit(root: Path, rev: str | None = None, html: Path | None = None, lineage_id: str | None = None, plots: Path | None = None) -> int:
    """Print the summary (or the lineage of ``lineage_id``); write the HTML report and the DVC plot files.

    Without ``--rev`` the DVC plot files go to ``ROOT/audit`` unless ``plots`` names another folder;
    with ``--rev`` only where ``plots`` says (the workspace holds another revision).
    """
    from rlint.audit_render import format_lineage, format_summary, write_html, write_plots

    with open_inputs(root, rev) as inputs:
        if lineage_id is not None:
            print(format_lineage(lineage(inputs, lineage_id)))
            return 0
        result = audit(inputs)
    print(format_summary(result))
    if plots is None and rev is None:
        plots = Path(root) / "audit"
    if plots is not None:
        written = write_plots(result, plots)
        print(f"\nDVC plots: {len(written)} files in {plots} (`dvc plots show`)")
    if html is not None:
        print(f"HTML report: {write_html(result, html)}")
    return 0
