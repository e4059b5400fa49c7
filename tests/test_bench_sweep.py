"""The difficulty sweep: level parsing, the per-level summary, and a small sweep through the command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rlint.bench_sweep import SUMMARY_KEYS, parse_level, sweep_summary, sweep_table

REPO = Path(__file__).resolve().parent.parent


def _record(level, mode, seed, rnd, tokens, acc, sound):
    return {"level": level, "mode": mode, "seed": seed, "round": rnd, "cumulative_tokens": tokens, "generated_tokens": 10,
            "heldout_accuracy": acc, "sound_accuracy": sound}


def test_parse_level_refuses_what_it_cannot_read():
    assert parse_level("a:task.modulus=100,task.max_steps=8") == ("a", {"task.modulus": "100", "task.max_steps": "8"})
    for bad in (":task.modulus=100", "a:modulus=100", "a:task.modulus", "a/b:task.seed=1"):
        with pytest.raises(ValueError, match="--level"):
            parse_level(bad)


def test_sweep_summary_is_per_level_and_mode():
    """Hand-computed: level 'hard', outcome ends at .2/.4 (mean .3), oracle at .5/.5 and reaches .3 at 10 tokens (share .5)."""
    records = []
    for seed, (out_final, orc_final) in enumerate([(0.2, 0.5), (0.4, 0.5)]):
        records += [_record("hard", "outcome", seed, 0, 0, 0.1, 0.0), _record("hard", "outcome", seed, 1, 10, 0.1, 0.0),
                    _record("hard", "outcome", seed, 2, 20, out_final, 0.1)]
        records += [_record("hard", "oracle", seed, 0, 0, 0.1, 0.0), _record("hard", "oracle", seed, 1, 10, 0.3, 0.2),
                    _record("hard", "oracle", seed, 2, 20, orc_final, 0.4)]
    records += [_record("easy", "outcome", 0, 0, 0, 0.5, 0.5), _record("easy", "outcome", 0, 1, 10, 0.7, 0.6)]
    summary = sweep_summary(records, 20, ["hard", "easy", "absent"])
    assert list(summary["levels"]) == ["hard", "easy"]
    hard = summary["levels"]["hard"]["modes"]
    assert set(SUMMARY_KEYS) <= set(hard["oracle"])
    assert hard["outcome"]["final_acc_mean"] == pytest.approx(0.3) and hard["outcome"]["final_acc_std"] == pytest.approx(0.1414, abs=1e-4)
    assert hard["oracle"]["final_acc_mean"] == pytest.approx(0.5) and hard["oracle"]["tokens_to_outcome_final_share"] == pytest.approx(0.5)
    assert hard["oracle"]["sound_acc_mean"] == pytest.approx(0.4) and hard["outcome"]["sound_acc_mean"] == pytest.approx(0.1)
    assert hard["outcome"]["seeds"] == [0, 1]
    assert summary["levels"]["hard"]["differences"]["oracle-outcome"]["mean"] == pytest.approx(0.2)
    assert "hard" in sweep_table(summary) and "never" not in sweep_table(summary)


@pytest.mark.slow
def test_small_sweep_through_the_command(tmp_path):
    """Two levels (chain lengths), two modes, one seed, a tiny budget: bases bootstrapped per level, records and summary agree."""
    import polars as pl
    import yaml

    from tests.conftest import TINY_PARAMS

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    params["bootstrap"]["steps"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_sweep

    out = tmp_path / "out"
    argv = ["--params", str(tmp_path / "params.yaml"), "--level", "short:task.min_steps=2,task.max_steps=2",
            "--level", "long:task.min_steps=3,task.max_steps=4,task.modulus=100", "--modes", "outcome,oracle", "--seeds", "0",
            "--budget", "300", "--out", str(out)]
    assert bench_sweep.main(argv) == 0
    records = pl.read_parquet(out / "records.parquet")
    assert sorted(set(records["level"])) == ["long", "short"] and sorted(set(records["mode"])) == ["oracle", "outcome"]
    summary = json.loads((out / "summary.json").read_text())
    for level in ("short", "long"):
        base = yaml.safe_load((out / f"level={level}" / "bootstrap" / "params.yaml").read_text())
        assert base["task"]["max_steps"] == {"short": 2, "long": 4}[level]
        for mode in ("outcome", "oracle"):
            entry = summary["levels"][level]["modes"][mode]
            assert set(SUMMARY_KEYS) <= set(entry) and entry["seeds"] == [0]
            final = records.filter((pl.col("level") == level) & (pl.col("mode") == mode) & (pl.col("cumulative_tokens") <= 300)).sort("round")
            assert entry["final_acc_mean"] == pytest.approx(final["heldout_accuracy"][-1])
    assert summary["levels"]["long"]["modes"]["outcome"]["tokens_to_outcome_final_share"] is not None
    assert (out / "sweep.png").stat().st_size > 0
    # the same level's parameters reuse its base (the checkpoint is not rewritten); other parameters retrain it
    workspace = out / "level=short" / "bootstrap"
    weights = workspace / "checkpoints" / "round=0" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    level_params = yaml.safe_load((workspace / "params.yaml").read_text())
    bench_sweep.bootstrap_level(level_params, workspace)
    assert weights.stat().st_mtime_ns == stamp
    level_params["bootstrap"]["steps"] = 6
    bench_sweep.bootstrap_level(level_params, workspace)
    assert weights.stat().st_mtime_ns != stamp
    # the summary can be recomputed from the committed records alone
    again = tmp_path / "again"
    assert bench_sweep.main(["--from-records", str(out / "records.parquet"), "--modes", "outcome,oracle", "--budget", "300", "--out", str(again)]) == 0
    assert json.loads((again / "summary.json").read_text())["levels"] == summary["levels"]
    # records without a level column (scripts/bench_modes.py's) join as a level named on the command line, with a base file
    plain = tmp_path / "plain.parquet"
    records.filter(pl.col("level") == "short").drop("level").write_parquet(plain)
    base_file = out / "level=short" / "bootstrap" / "metrics" / "evaluate" / "round=0.json"
    joined = tmp_path / "joined"
    assert bench_sweep.main(["--from-records", str(out / "records.parquet"), f"again={plain}", "--base", f"again={base_file}",
                             "--modes", "outcome,oracle", "--budget", "300", "--out", str(joined)]) == 0
    levels = json.loads((joined / "summary.json").read_text())
    assert levels["levels"]["again"] == summary["levels"]["short"] and levels["bases"]["again"] == json.loads(base_file.read_text())
    assert bench_sweep.main(["--from-records", str(plain), "--out", str(tmp_path / "refused")]) == 2  # unlabelled
    assert not (tmp_path / "refused").exists()


def test_bad_level_is_refused_before_any_training(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_sweep

    code = bench_sweep.main(["--params", str(REPO / "params.yaml"), "--level", "bad:task.modulus=1", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "level bad: task: task.modulus=1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
