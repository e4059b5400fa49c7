"""The audit (``rlint audit``): how the internal supervision evolves across rounds, from every round's Parquet.

Modules: :mod:`~rlint.audit.inputs` (what it reads), :mod:`~rlint.audit.summary` (the per-round
tables, pure polars queries), :mod:`~rlint.audit.advantages` (advantage statistics of trained
tokens), :mod:`~rlint.audit.lineage` (an id back to its rollout), :mod:`~rlint.audit.sources`
(reading a workspace or a git revision), :mod:`~rlint.audit.render` (text),
:mod:`~rlint.audit.plots` (figures and the HTML report; matplotlib is imported only there),
:mod:`~rlint.audit.cli` (the command). Nothing here imports torch. docs/audit.md.
"""
