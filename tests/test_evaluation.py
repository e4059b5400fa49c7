"""Held-out and sound accuracy, their standard errors, and the base diagnostics, by hand."""

from __future__ import annotations

import pytest

from rlint.base_diagnostics import base_diagnostics, diagnostics_table
from rlint.evaluation import binomial_sem, heldout_metrics, right_through_wrong_share, sound_accuracy


def _row(reward, first, problem="p", steps=4):
    return {"problem_id": problem, "reward": reward, "true_first_error_step": first, "steps": steps}


def test_sound_accuracy_counts_only_right_answers_with_every_step_right():
    rows = [_row(1.0, None), _row(1.0, None), _row(1.0, 2), _row(0.0, 1), _row(None, None)]
    assert sound_accuracy(rows) == pytest.approx(2 / 5)
    assert right_through_wrong_share(rows) == pytest.approx(1 / 3)
    assert sound_accuracy([]) == 0.0 and right_through_wrong_share([_row(0.0, 1)]) is None


def test_heldout_metrics_with_binomial_standard_errors():
    rows = [_row(1.0, None)] * 6 + [_row(1.0, 3)] * 2 + [_row(0.0, 1)] * 2  # 10 rows: 8 right, 6 sound
    metrics = heldout_metrics(rows, has_step_checker=True)
    assert metrics == {"heldout_accuracy": 0.8, "heldout_accuracy_sem": round((0.8 * 0.2 / 10) ** 0.5, 4),
                       "sound_accuracy": 0.6, "sound_accuracy_sem": round((0.6 * 0.4 / 10) ** 0.5, 4), "evaluate_problems": 10}
    without = heldout_metrics(rows, has_step_checker=False)
    assert without["sound_accuracy"] is None and without["sound_accuracy_sem"] is None and without["heldout_accuracy"] == 0.8
    assert binomial_sem(0.0, 0) == 0.0 and binomial_sem(1.0, 5) == 0.0


def test_base_diagnostics_by_hand():
    # problem a (3 checked steps): right; wrong at 2; right through a wrong step 3.  problem b (2 steps): wrong at 1 twice
    rows = [_row(1.0, None, "a", 3), _row(0.0, 2, "a", 3), _row(1.0, 3, "a", 3), _row(0.0, 1, "b", 2), _row(None, 1, "b", 2)]
    d = base_diagnostics(rows)
    assert d["samples"] == 5 and d["prompts"] == 2
    assert d["sample_accuracy"] == 0.4 and d["no_right_sample_share"] == 0.5 and d["right_through_wrong_share"] == 0.5
    assert d["first_error_distribution"] == {"1": 2, "2": 1}  # failures only: the right answer through step 3 is not one
    # step 1: all 5 reach it, 2 wrong; step 2: the 3 of a, 1 wrong; step 3: 2 of a (right and through-wrong), 1 wrong
    assert d["samples_reaching_position"] == {"1": 5, "2": 3, "3": 2}
    assert d["step_error_rate_by_position"] == {"1": 0.4, "2": 0.3333, "3": 0.5}
    table = diagnostics_table(d)
    assert "2 prompts x 2 samples" in table and len(table.splitlines()) == 5


def test_base_diagnostics_of_no_right_sample():
    d = base_diagnostics([_row(0.0, 1, "a", 2), _row(0.0, 1, "a", 2)])
    assert d["sample_accuracy"] == 0.0 and d["no_right_sample_share"] == 1.0 and d["right_through_wrong_share"] is None
    assert d["step_error_rate_by_position"] == {"1": 1.0}
