"""dvc.yaml and rlint/stage_graph.py agree on every stage: editing one without the other fails here."""

import pytest
import yaml

from rlint.stage_deps import is_code_dep
from rlint.stage_graph import COMMANDS, ROUND_STAGES, STAGES, dvc_path, round_stages, stage
from tests.conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _paths(entries: list) -> list[tuple[str, bool]]:
    """dvc.yaml's outs or metrics as (path, cached)."""
    out = []
    for entry in entries or []:
        path, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        out.append((path, (options or {}).get("cache", True)))
    return out


def test_the_table_names_every_stage_of_dvc_yaml():
    assert [s.name for s in STAGES] == list(DVC)


@pytest.mark.parametrize("s", STAGES, ids=lambda s: s.name)
def test_dvc_yaml_agrees_with_the_table(s):
    entry = DVC[s.name]
    assert entry.get("foreach") == (f"${{{s.over}}}" if s.over else None)
    body = entry.get("do", entry)
    assert body["cmd"] == dvc_path(s.cmd)
    assert [d for d in body.get("deps", []) if not is_code_dep(d)] == [dvc_path(p) for p in s.inputs]
    assert _paths(body.get("outs")) == [(dvc_path(p), s.cache) for p in s.outputs]
    assert _paths(body.get("metrics")) == [(dvc_path(p), False) for p in s.metrics]
    assert body.get("params", []) == list(s.params)


def test_round_order_and_commands():
    assert ROUND_STAGES == ("rollout", "mine", "correct", "archive", "credit", "optimize", "evaluate")
    assert all(s.module == f"rlint.stages.{s.name}" for s in round_stages())
    assert COMMANDS == ("bootstrap", *ROUND_STAGES)
    with pytest.raises(KeyError, match="no stage 'nope'"):
        stage("nope")


def test_the_cli_checks_early_the_round_inputs_dvc_yaml_lists():
    """The CLI checks a stage's upstream files before torch loads: each is a data dep of that stage in dvc.yaml."""
    from rlint.cli import STAGE_INPUTS

    assert STAGE_INPUTS == {s.name: s.round_inputs() for s in round_stages() if s.round_inputs()}
    for command, inputs in STAGE_INPUTS.items():
        deps = DVC[command]["do"]["deps"]
        assert all(f"data/{name}/round=${{item.id}}" in deps for name in inputs), (command, deps)
