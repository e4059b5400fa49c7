"""One round of rlint, in process: open this file first.

Round k turns policy k-1 (``checkpoints/round=<k-1>``) into policy k, stage by stage
(rlint/stage_graph.py is the table: command, inputs, outputs, params of each):

1. rollout  (rlint/rollout.py, rlint/stages/rollout.py): G samples per prompt, scored by the task's outcome verifier;
   ``archive.replay_share`` of the prompts restart from archived hard prefixes.
2. mine     (rlint/identify/: search.py over rlint/mining.py, repair.py over rlint/repair.py): the first
   wrong step of each failure, one interface for both strategies.
3. correct  (rlint/correct.py, rlint/stages/correct.py): verified continuations (branches) from the last good prefix.
4. archive  (rlint/archive.py): hard cases (uncorrected, unlocated) kept at their last good prefix.
5. credit   (rlint/credit.py, rlint/train_set.py): per-token advantages and loss weights, the train set.
6. optimize (rlint/losses.py, rlint/trainer/): a clipped policy-gradient update.
7. evaluate (rlint/evaluation.py): held-out accuracy and sound accuracy of policy k.

DVC runs each stage as its own ``rlint <stage> --round k`` process (dvc.yaml, flows/rounds.py);
:func:`run_round` calls the same ``run`` functions in one process (the benchmarks: rlint/bench_modes.py).

How rlint departs from the seed paper (arXiv 2605.05226, IOP; docs/method.md): the paper has the
policy repair its own failure and takes the token difference as the process signal; rlint has that
(``mine.strategy: repair``, ``credit.estimator: repair_diff``) and, by default, Monte Carlo search
over prefixes (``mine.strategy: search``: binary search for the first step after which no
continuation succeeds), credited by the value difference across that step, with corrected branches
trained from the last good prefix. Failures it cannot locate or correct go to an archive, replayed
as restart points in later rounds. ``mode: oracle`` takes first errors from the task's ground-truth
step checker, an upper bound for comparison; ``mode: outcome`` is plain GRPO. The testbed is an
embedded arithmetic task (chains of ``+-*`` modulo 100) and a tiny model; datasets and your own model plug in.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rlint.stage_graph import round_stages, stage


def run_stage(name: str, params, round_id: int, root: Path) -> dict:
    """``rlint.stages.<command>.run(params, round_id, root)`` of stage ``name``; returns its metrics."""
    return importlib.import_module(stage(name).module).run(params, round_id, root)


def start_archive(params, root: Path) -> dict:
    """The empty archive round 1 starts from (``data/archive/round=0``, dvc.yaml's archive_base)."""
    return run_stage("archive_base", params, 0, root)


def run_round(params, round_id: int, root: Path) -> dict[str, dict]:
    """Every stage of round ``round_id`` in order, in ``root``; stage name -> the metrics its ``run`` returned."""
    return {s.name: run_stage(s.name, params, round_id, root) for s in round_stages()}
