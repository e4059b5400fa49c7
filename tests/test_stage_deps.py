"""Every module a DVC stage's command imports is among that stage's deps (rlint/stage_deps.py)."""

import copy
import subprocess
import sys

import yaml

from rlint.stage_deps import is_code_dep, rewrite_code_deps
from scripts.check_stage_deps import check
from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "check_stage_deps.py"


def test_no_stage_of_dvc_yaml_misses_a_module_it_imports():
    results = check(REPO)
    assert {r.stage for r in results} >= {"bootstrap", "rollout", "mine", "correct", "archive", "credit", "optimize", "evaluate"}
    missing = {r.stage: r.missing for r in results if r.missing}
    assert not missing, f"dvc.yaml misses code deps (run `python scripts/check_stage_deps.py --write`): {missing}"
    by_stage = {r.stage: set(r.imported) for r in results}
    # what the issue found missing is now imported and listed: the verifiers, the sampler, the CLI
    assert {"rlint/tasks/arithmetic.py", "rlint/engine/hf.py", "rlint/steps.py", "rlint/cli.py"} <= by_stage["mine"]
    assert "rlint/tasks/arithmetic.py" in by_stage["evaluate"] and "rlint/stages/correct.py" in by_stage["correct"]
    assert not any(path.startswith("rlint/audit") for path in by_stage["bootstrap"])  # `rlint audit` is imported by name only when run


def test_write_keeps_everything_but_the_code_deps_and_is_idempotent():
    text = (REPO / "dvc.yaml").read_text()
    results = {r.stage: list(r.imported) for r in check(REPO)}
    shuffled = {stage: sorted(paths, reverse=True) for stage, paths in results.items()}
    once = rewrite_code_deps(text, shuffled)
    assert rewrite_code_deps(once, shuffled) == once
    assert [line for line in once.splitlines() if line.lstrip().startswith("#")] == [line for line in text.splitlines() if line.lstrip().startswith("#")]
    before, after = yaml.safe_load(text), yaml.safe_load(once)
    for name, stage in after["stages"].items():
        body = stage.get("do", stage)
        assert [d for d in body["deps"] if is_code_dep(d)] == shuffled[name]
    strip = copy.deepcopy(before)
    for doc in (strip, after):
        for stage in doc["stages"].values():
            body = stage.get("do", stage)
            body["deps"] = [d for d in body["deps"] if not is_code_dep(d)]
    assert strip == after  # data deps (in order), params, outs, metrics, plots untouched


def test_write_adds_deps_to_a_stage_without_and_leaves_other_sections_alone():
    text = "stages:\n  a:\n    cmd: rlint a\n    outs:\n      - x\nplots:\n  a:\n    deps:\n      - rlint/keep.py\n"
    once = rewrite_code_deps(text, {"a": ["rlint/a.py"]})
    assert yaml.safe_load(once) == {"stages": {"a": {"cmd": "rlint a", "deps": ["rlint/a.py"], "outs": ["x"]}}, "plots": {"a": {"deps": ["rlint/keep.py"]}}}
    assert rewrite_code_deps(once, {"a": ["rlint/a.py"]}) == once


def _tiny_repo(tmp_path, dvc_yaml: str):
    (tmp_path / "rlint" / "stages").mkdir(parents=True)
    (tmp_path / "flows").mkdir()
    (tmp_path / "rlint" / "cli.py").write_text("TOOLS = {'report': 'rlint.report'}\nimport importlib\n")
    (tmp_path / "rlint" / "stages" / "__init__.py").write_text("")
    (tmp_path / "rlint" / "stages" / "mine.py").write_text("from rlint import verify\n\ndef run():\n    from ..engine import sample\n")
    (tmp_path / "rlint" / "verify.py").write_text("import importlib\nimportlib.import_module('rlint.steps')\n")
    (tmp_path / "rlint" / "engine").mkdir()
    (tmp_path / "rlint" / "engine" / "__init__.py").write_text("")
    (tmp_path / "rlint" / "engine" / "sample.py").write_text("import torch\n")
    (tmp_path / "rlint" / "steps.py").write_text("")
    (tmp_path / "rlint" / "report.py").write_text("")
    (tmp_path / "rlint" / "unused.py").write_text("")
    (tmp_path / "dvc.yaml").write_text(dvc_yaml)
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path)], capture_output=True, text=True)


DVC_YAML = """stages:
  mine:  # the stage under test
    foreach: ${rounds}
    do:
      cmd: rlint mine --round ${item.id}
      deps:
        - data/rollouts/round=${item.id}
        - rlint/stages/mine.py
        - rlint/unused.py
      params:
        - seed
"""


def test_script_finds_lazy_relative_and_importlib_imports_and_write_fixes_them(tmp_path):
    run = _tiny_repo(tmp_path, DVC_YAML)
    assert run.returncode == 1, run.stderr
    missing = sorted(line.split()[1] for line in run.stdout.splitlines() if line.startswith("  missing"))
    assert missing == ["rlint/cli.py", "rlint/engine/__init__.py", "rlint/engine/sample.py", "rlint/stages/__init__.py", "rlint/steps.py", "rlint/verify.py"]
    assert "  unused  rlint/unused.py" in run.stdout and "total missing: 6" in run.stdout
    write = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path), "--write"], capture_output=True, text=True)
    assert write.returncode == 0, write.stderr
    stage = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["mine"]["do"]
    assert stage["deps"][0] == "data/rollouts/round=${item.id}" and "rlint/unused.py" not in stage["deps"] and len(stage["deps"]) == 8
    assert "# the stage under test" in (tmp_path / "dvc.yaml").read_text()
    again = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path), "--write"], capture_output=True, text=True)
    assert "already up to date" in again.stdout and "total missing: 0" in again.stdout


def test_script_rejects_an_unknown_command_with_exit_2_and_writes_nothing(tmp_path):
    bad = DVC_YAML.replace("rlint mine", "rlint mien")
    run = _tiny_repo(tmp_path, bad)
    assert run.returncode == 2 and "rlint has no sub-command 'mien'" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert (tmp_path / "dvc.yaml").read_text() == bad
