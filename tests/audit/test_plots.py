"""Figures and the HTML report (rlint/audit/plots.py)."""

from __future__ import annotations

import base64
import re

from rlint.audit.plots import figures, render_html


def test_html_is_self_contained_with_every_figure_embedded(result):
    page = render_html(result)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(figures(result)) == 7
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
