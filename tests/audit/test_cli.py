"""``rlint audit`` (rlint/audit/cli.py): the summary, the files it writes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from rlint.cli import main
from tests.audit.run import rows
from tests.conftest import REPO


def test_cli_prints_the_summary_and_writes_html_and_dvc_plots(run_dir, tmp_path, capsys):
    html = tmp_path / "report.html"
    assert main(["audit", "--root", str(run_dir), "--html", str(html), "--plots", str(run_dir / "audit")]) == 0
    out = capsys.readouterr().out
    assert "Outcomes" in out and "Advantages of trained tokens, by kind" in out and html.is_file()
    # every image plot that dvc.yaml declares is written by the audit
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    assert declared and all((run_dir / p).is_file() for p in declared)
    assert json.loads((run_dir / "audit" / "rounds.json").read_text())[1]["round"] == 1


def test_cli_lineage_and_bad_input_exit_2_with_one_line(run_dir, tmp_path, capsys):
    rollout_id = rows(run_dir, "rollouts", 2)[0]["rollout_id"]
    assert main(["audit", "--root", str(run_dir), "--lineage", rollout_id]) == 0
    assert "sampled by policy_version 1 (checkpoints/round=1)" in capsys.readouterr().out
    for args, message in (
        (["audit", "--root", str(run_dir), "--lineage", "r1-nope-s0"], "id 'r1-nope-s0' not found"),
        (["audit", "--root", str(tmp_path)], "no round outputs"),
        (["audit", "--root", str(tmp_path / "absent")], "no such directory"),
        (["audit", "--root", str(run_dir), "--rev", "HEAD"], "cannot read git revision 'HEAD'"),  # not a git repository
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_the_audit_imports_no_torch():
    """``rlint audit`` without --html or --plots: neither torch nor matplotlib in a fresh process."""
    code = ("import sys; from rlint.cli import TOOLS; import importlib; importlib.import_module(TOOLS['audit']); "
            "print(sorted(m for m in ('torch', 'transformers', 'accelerate', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
