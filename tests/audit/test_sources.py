"""Where the audit reads from (rlint/audit/sources.py): the per-round cache, older revisions through DVC."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from polars.testing import assert_frame_equal

from rlint.audit.sources import open_inputs, workspace_inputs
from rlint.audit.summary import audit
from rlint.cli import main
from tests.conftest import REPO


def test_cached_advantage_moments_equal_a_fresh_read_and_follow_a_rewritten_round(run_dir, result, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(run_dir / "data", ws / "data")
    cache = tmp_path / "cache"
    first = audit(workspace_inputs(ws, cache_dir=cache))  # computes every round, fills the cache
    assert (cache / "advantage_moments.v2.parquet").is_file()
    again = audit(workspace_inputs(ws, cache_dir=cache))  # every round from the cache
    assert_frame_equal(first.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)
    assert_frame_equal(again.advantages, result.advantages, rel_tol=1e-12, abs_tol=1e-12)
    # a stage rewrites round 2: the cache entry no longer matches the file and is recomputed
    path = ws / "data" / "train_set" / "round=2" / "part-0.parquet"
    table = pq.read_table(path)
    doubled = pl.from_arrow(table).with_columns(
        pl.col("advantages").list.eval(pl.element() * 2), pl.col("advantage_sum", "advantage_min", "advantage_max") * 2, pl.col("advantage_sum_sq") * 4,
    ).to_arrow().cast(table.schema)
    pq.write_table(doubled, path)
    changed = audit(workspace_inputs(ws, cache_dir=cache)).advantages
    old, new = (f.filter((pl.col("round") == 2) & (pl.col("kind") == "all"))["advantage_mean"].item() for f in (result.advantages, changed))
    assert new == pytest.approx(2 * old)
    assert_frame_equal(changed.filter(pl.col("round") == 1), result.advantages.filter(pl.col("round") == 1), rel_tol=1e-12, abs_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# Older revisions through DVC: a git + DVC repository holding the run, one commit per round.

BIN = str(Path(sys.executable).parent)


def _sh(ws: Path, *args: str) -> str:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(ws), "PYTHONDONTWRITEBYTECODE": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(args, cwd=ws, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def git_repo(run_dir, tmp_path_factory) -> Path:
    """The run as a git + DVC repository: commit 1 holds round 1 (dvc.lock + DVC cache), commit 2 adds round 2."""
    repo = tmp_path_factory.mktemp("git") / "repo"
    shutil.copytree(run_dir, repo, ignore=shutil.ignore_patterns("audit"))
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    later = tmp_path_factory.mktemp("later")
    for path in [*repo.glob("data/*/round=2"), repo / "checkpoints" / "round=2", *repo.glob("metrics/*/round=2.json")]:
        target = later / path.relative_to(repo)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["rounds"].pop("r2")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    python = sys.executable
    _sh(repo, "git", "init", "-q")
    _sh(repo, python, "-m", "dvc", "init", "-q")
    _sh(repo, python, "-m", "dvc", "commit", "-f", "-q")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "round 1")
    shutil.copytree(later, repo, dirs_exist_ok=True)
    shutil.copy(run_dir / "params.yaml", repo / "params.yaml")
    _sh(repo, python, "-m", "dvc", "commit", "-f", "-q")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "round 2")
    shutil.rmtree(repo / "data")  # a revision is read from the DVC cache, not the workspace
    return repo


@pytest.mark.slow
def test_audit_of_an_older_revision_reads_it_through_dvc(git_repo, result):
    with open_inputs(git_repo, "HEAD~1") as inputs:
        old = audit(inputs)
    with open_inputs(git_repo, "HEAD") as inputs:
        new = audit(inputs)
    assert old.rounds["round"].to_list() == [0, 1] and new.rounds["round"].to_list() == [0, 1, 2]
    assert not (git_repo / "data").exists()
    columns = ["round", "train_accuracy", "heldout_accuracy", "failures_located", "correction_yield", "trained_tokens", "advantage_mean"]
    assert new.rounds.select(columns).equals(result.rounds.select(columns))
    assert old.rounds.select(columns).equals(result.rounds.filter(pl.col("round") <= 1).select(columns))
    # float sums may differ in the last bits when the same rows come from other files
    assert_frame_equal(old.advantages, result.advantages.filter(pl.col("round") <= 1), rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.slow
def test_cli_rev_summary_lineage_and_bad_rev(git_repo, capsys):
    assert main(["audit", "--root", str(git_repo), "--rev", "HEAD~1"]) == 0
    out = capsys.readouterr().out
    assert f"{git_repo}@HEAD~1: 2 round(s), 0..1" in out
    assert not (git_repo / "audit").exists()  # no plot files for another revision unless asked
    branch_id = None
    with open_inputs(git_repo, "HEAD") as inputs:
        branch_id = inputs.frame("branches").select("branch_id").head(1).collect().item()
    assert main(["audit", "--root", str(git_repo), "--rev", "HEAD", "--lineage", branch_id]) == 0
    assert "prompt" in capsys.readouterr().out
    assert main(["audit", "--root", str(git_repo), "--rev", "no-such-rev"]) == 2
    assert "unknown Git revision 'no-such-rev'" in capsys.readouterr().err
