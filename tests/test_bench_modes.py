"""The mode benchmark: token accounting, curves and summary by hand; a small real run through the command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rlint.bench_modes import accuracy_at, campaign_params, mode_curves, summarize, summary_record, summary_table

REPO = Path(__file__).resolve().parent.parent


def _rec(mode, seed, rnd, cum, acc):
    return {"mode": mode, "seed": seed, "round": rnd, "cumulative_tokens": cum, "heldout_accuracy": acc}


RECORDS = [
    # outcome: 10 tokens a round
    _rec("outcome", 0, 0, 0, 0.3), _rec("outcome", 0, 1, 10, 0.4), _rec("outcome", 0, 2, 20, 0.5), _rec("outcome", 0, 3, 30, 0.6),
    _rec("outcome", 1, 0, 0, 0.3), _rec("outcome", 1, 1, 10, 0.4), _rec("outcome", 1, 2, 20, 0.4), _rec("outcome", 1, 3, 30, 0.5),
    # internalized: 15 tokens a round, the third round overshoots a budget of 30
    _rec("internalized", 0, 0, 0, 0.3), _rec("internalized", 0, 1, 15, 0.6), _rec("internalized", 0, 2, 30, 0.7), _rec("internalized", 0, 3, 45, 0.9),
    _rec("internalized", 1, 0, 0, 0.3), _rec("internalized", 1, 1, 15, 0.5), _rec("internalized", 1, 2, 30, 0.7), _rec("internalized", 1, 3, 45, 0.9),
    _rec("oracle", 0, 0, 0, 0.3), _rec("oracle", 0, 1, 30, 0.8),
    _rec("oracle", 1, 0, 0, 0.3), _rec("oracle", 1, 1, 30, 0.8),
]


def test_accuracy_is_a_step_function_of_tokens():
    run = [r for r in RECORDS if r["mode"] == "internalized" and r["seed"] == 0]
    assert [accuracy_at(run, b) for b in (0, 14, 15, 29, 30, 44)] == [0.3, 0.3, 0.6, 0.6, 0.7, 0.7]


def test_curves_mean_and_spread_over_seeds():
    curves = mode_curves(RECORDS, np.array([0.0, 10.0, 20.0, 30.0]))
    assert curves["outcome"]["per_seed"].tolist() == [[0.3, 0.4, 0.5, 0.6], [0.3, 0.4, 0.4, 0.5]]
    assert curves["outcome"]["mean"] == pytest.approx([0.3, 0.4, 0.45, 0.55])
    assert curves["outcome"]["std"] == pytest.approx([0, 0, 0.1 / 2**0.5, 0.1 / 2**0.5])  # sample std over 2 seeds
    assert curves["outcome"]["sem"] == pytest.approx([0, 0, 0.05, 0.05])
    assert curves["internalized"]["min"] == pytest.approx([0.3, 0.3, 0.5, 0.7])


def test_summary_tokens_to_outcome_final_and_gap_closed():
    summary = summarize(RECORDS, 30)
    assert summary["grid"].tolist() == [0, 10, 15, 20, 30]
    assert summary["final_mean"] == pytest.approx({"outcome": 0.55, "internalized": 0.7, "oracle": 0.8})
    # outcome's final mean 0.55 is first reached by internalized's mean curve (0.55 at 15 tokens)
    assert summary["tokens_to_outcome_final"] == {"outcome": 30.0, "internalized": 15.0, "oracle": 30.0}
    assert summary["gap_closed"] == pytest.approx((0.7 - 0.55) / (0.8 - 0.55))
    table = summary_table(RECORDS, summary)
    assert "internalized" in table and "0.60" in table  # gap closed, printed


def test_summary_record_has_the_json_keys_and_differences_with_their_error():
    summary = summarize(RECORDS, 30)
    record = summary_record(RECORDS, summary)
    outcome, internalized = record["modes"]["outcome"], record["modes"]["internalized"]
    assert outcome["final_acc_mean"] == pytest.approx(0.55) and outcome["seeds"] == [0, 1]
    assert outcome["final_acc_per_seed"] == pytest.approx([0.6, 0.5]) and outcome["final_acc_sem"] == pytest.approx(0.05)
    assert internalized["tokens_to_outcome_final_share"] == pytest.approx(0.5) and internalized["gap_closed"] == pytest.approx(0.6)
    assert "gap_closed" not in outcome and "gap_closed" not in record["modes"]["oracle"]
    assert internalized["rounds_mean"] == 2.0  # the third round ended past the budget
    diff = record["differences"]["internalized-outcome"]
    assert diff["mean"] == pytest.approx(0.15) and diff["se"] == pytest.approx((0.05**2 + 0.0) ** 0.5)


def test_sound_accuracy_of_the_final_policies_and_old_records_without_it():
    # sound accuracy on outcome's records: seed 0 0.5 after round 3 (30 tokens), seed 1 0.3; internalized has none (older records)
    sound = {(0, 3): 0.5, (1, 3): 0.3, (0, 2): 0.45}
    records = [{**r, "sound_accuracy": sound.get((r["seed"], r["round"])), "right_through_wrong_share": 0.1} if r["mode"] == "outcome" else r
               for r in RECORDS]
    summary = summarize(records, 30)
    record = summary_record(records, summary)
    assert record["modes"]["outcome"]["sound_acc_mean"] == pytest.approx(0.4)
    assert record["modes"]["outcome"]["sound_acc_std"] == pytest.approx(0.2 / 2**0.5)
    assert record["modes"]["outcome"]["right_through_wrong_mean"] == pytest.approx(0.1)
    assert record["modes"]["internalized"]["sound_acc_mean"] is None and record["modes"]["internalized"]["sound_acc_std"] is None
    # a budget of 20: outcome's last rounds within it are round 2 (seed 0: 0.45; seed 1: none recorded, skipped)
    assert summary_record(records, summarize(records, 20))["modes"]["outcome"]["sound_acc_mean"] == pytest.approx(0.45)
    assert "sound_acc" in summary_table(records, summary)


def test_gap_is_undefined_when_the_oracle_is_not_better():
    records = [r for r in RECORDS if r["mode"] != "oracle"] + [_rec("oracle", 0, 0, 0, 0.3)]
    assert summarize(records, 30)["gap_closed"] is None


def test_campaign_params_set_mode_seed_rounds_and_overrides():
    params = campaign_params({"seed": 0, "mode": "internalized", "mine": {"continuations_per_probe": 8}, "rounds": {}}, "oracle", 2, 3,
                             {"mine.continuations_per_probe": 4})
    assert params["mode"] == "oracle" and params["seed"] == 2 and params["mine"]["continuations_per_probe"] == 4
    assert params["rounds"] == {"r1": {"id": 1, "prev": 0}, "r2": {"id": 2, "prev": 1}, "r3": {"id": 3, "prev": 2}}


def test_mode_labels_set_their_params_and_every_label_loads(tmp_path):
    import yaml

    from rlint.bench_modes import MODE_LABELS, MODES_ORDER
    from rlint.config import load_params

    assert set(MODE_LABELS) == set(MODES_ORDER) and MODES_ORDER[:1] == ("outcome",)
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    user = {"mine.strategy": "search", "credit.estimator": "internalized", "mine.max_failures": 3}  # a --set the labels' own keys win over
    expected = {"outcome": ("outcome", "search", "internalized"), "internalized": ("internalized", "search", "internalized"),
                "internalized_repair": ("internalized", "repair", "repair_diff"), "oracle": ("oracle", "search", "internalized"),
                "oracle_repair": ("oracle", "repair", "repair_diff")}
    for label, (mode, strategy, estimator) in expected.items():
        params = campaign_params(base, label, 1, 2, user)
        assert (params["mode"], params["mine"]["strategy"], params["credit"]["estimator"]) == (mode, strategy, estimator), label
        assert params["mine"]["max_failures"] == 3
        (tmp_path / f"{label}.yaml").write_text(yaml.safe_dump(params))
        loaded = load_params(tmp_path / f"{label}.yaml")  # the config accepts every label
        assert (loaded.mode, loaded.mine.strategy, loaded.credit.estimator) == (mode, strategy, estimator)
    # the oracle label stays the search family's oracle even when the base parameters choose repair
    assert campaign_params({**base, "mine": {**base["mine"], "strategy": "repair"}}, "oracle", 0, 1)["mine"]["strategy"] == "search"


def test_repair_modes_close_their_gap_towards_the_oracle_of_their_family():
    repair = [_rec("internalized_repair", s, 0, 0, 0.3) for s in (0, 1)] + [_rec("internalized_repair", s, 1, 30, 0.65) for s in (0, 1)]
    oracle_repair = [_rec("oracle_repair", s, 0, 0, 0.3) for s in (0, 1)] + [_rec("oracle_repair", s, 1, 30, 0.75) for s in (0, 1)]
    summary = summarize(RECORDS + repair + oracle_repair, 30)
    assert summary["gap_oracles"] == {"internalized": "oracle", "internalized_repair": "oracle_repair"}
    assert summary["gaps_closed"]["internalized_repair"] == pytest.approx((0.65 - 0.55) / (0.75 - 0.55))
    assert summary["gap_closed"] == pytest.approx(0.6)  # internalized's, towards oracle, as before
    record = summary_record(RECORDS + repair + oracle_repair, summary)
    assert record["modes"]["internalized_repair"]["gap_oracle"] == "oracle_repair" and "gap_closed" not in record["modes"]["oracle_repair"]
    assert list(record["modes"]) == ["outcome", "internalized", "internalized_repair", "oracle", "oracle_repair"]
    assert "gap closed by internalized_repair (outcome -> oracle_repair, final means): 0.50" in summary_table(RECORDS + repair + oracle_repair, summary)
    # without oracle_repair, the repair mode's gap is measured towards the search oracle
    alone = summarize(RECORDS + repair, 30)
    assert alone["gap_oracles"]["internalized_repair"] == "oracle"
    assert alone["gaps_closed"]["internalized_repair"] == pytest.approx((0.65 - 0.55) / (0.8 - 0.55))


def test_an_unknown_mode_label_is_refused_with_exit_code_2(tmp_path, tiny_checkpoint, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_modes

    code = bench_modes.main(["--params", str(REPO / "params.yaml"), "--checkpoint", str(tiny_checkpoint), "--modes", "outcome,repair",
                             "--out", str(tmp_path / "out")])
    assert code == 2 and "--modes: unknown label(s) repair" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_small_benchmark_through_the_command(tmp_path, tiny_checkpoint):
    """Three modes, two seeds, a budget of one or two tiny rounds: records agree with the stages' own metrics."""
    import polars as pl
    import yaml

    from tests.conftest import TINY_PARAMS

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    params["sampling"]["engine"] = "auto"  # the command's --engine (default transformers) decides, for every point
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_modes

    out = tmp_path / "out"
    budget = 700
    code = bench_modes.main(["--params", str(tmp_path / "params.yaml"), "--checkpoint", str(tiny_checkpoint), "--budget", str(budget),
                             "--seeds", "0,1", "--out", str(out), "--jobs", "2"])
    assert code == 0
    records = pl.read_parquet(out / "records.parquet")
    assert json.loads((out / "base" / "metrics" / "evaluate" / "round=0.json").read_text())["engine"] == "transformers"
    assert sorted(set(records["mode"])) == ["internalized", "oracle", "outcome"] and sorted(set(records["seed"])) == [0, 1]
    for (mode, seed), group in records.group_by("mode", "seed"):
        group = group.sort("round")
        workspace = out / f"mode={mode}" / f"seed={seed}"
        cum = 0
        for row in group.filter(pl.col("round") > 0).iter_rows(named=True):
            metric = lambda stage, key: json.loads((workspace / "metrics" / stage / f"round={row['round']}.json").read_text()).get(key, 0)  # noqa: E731
            assert row["rollout_tokens"] == metric("rollout", "generated_tokens")
            assert row["mining_tokens"] == metric("mine", "mining_tokens") and row["correction_tokens"] == metric("correct", "correction_tokens")
            cum += row["rollout_tokens"] + row["mining_tokens"] + row["correction_tokens"]
            assert row["cumulative_tokens"] == cum
            assert row["heldout_accuracy"] == metric("evaluate", "heldout_accuracy")
            assert row["sound_accuracy"] == metric("evaluate", "sound_accuracy")
        # a round starts only while the last round's cost still fits in the budget
        costs = group["generated_tokens"].to_list()
        assert all(cum + cost <= budget for cum, cost in zip(group["cumulative_tokens"][1:-1], costs[1:-1]))
        assert group["cumulative_tokens"][-1] + costs[-1] > budget
        if mode == "outcome":
            assert group["mining_tokens"].sum() == 0 and group["correction_tokens"].sum() == 0
    text = (out / "summary.txt").read_text()
    assert "gap closed" in text and "tokens_to_outcome_final" in text
    # each campaign is an ordinary workspace: the audit reads it (its path holds "mode=...", not a hive partition)
    from rlint.cli import main as rlint_main

    assert rlint_main(["--root", str(out / "mode=internalized" / "seed=1"), "audit"]) == 0
    png = (out / "accuracy_vs_tokens.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_bad_checkpoint_is_refused_with_exit_code_2(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_modes

    code = bench_modes.main(["--params", str(REPO / "params.yaml"), "--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert code == 2 and "nothing" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_summary_from_records_files_of_separate_runs(tmp_path):
    import polars as pl

    sys.path.insert(0, str(REPO / "scripts"))
    import bench_modes

    first = [r for r in RECORDS if r["seed"] == 0]
    second = [r for r in RECORDS if r["seed"] == 1]
    pl.DataFrame(first).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame(second).write_parquet(tmp_path / "b.parquet")
    out = tmp_path / "out"
    assert bench_modes.main(["--from-records", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--budget", "30", "--out", str(out)]) == 0
    text = (out / "summary.txt").read_text()
    assert "gap closed by internalized (outcome -> oracle, final means): 0.60" in text
    summary = json.loads((out / "summary.json").read_text())  # records without sound_accuracy (written before it): None, not an error
    assert summary["modes"]["outcome"]["sound_acc_mean"] is None
    assert (out / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"
