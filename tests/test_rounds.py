import shutil

import pytest
import yaml

from rlint.cli import main
from rlint.config import ConfigError, load_params
from rlint.rounds import add_round
from tests.conftest import REPO


def test_add_round_keeps_comments_and_chains(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    before = path.read_text()
    assert add_round(path) == 3
    assert main(["--root", str(tmp_path), "add-round"]) == 0
    text = path.read_text()
    assert text.startswith(before.rstrip("\n")) and "# Every parameter" in text
    assert load_params(path).rounds["r4"] == {"id": 4, "prev": 3}


def test_add_round_from_empty_rounds(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\nrounds: {}\n")
    assert add_round(path) == 1
    assert yaml.safe_load(path.read_text())["rounds"] == {"r1": {"id": 1, "prev": 0}}


def test_add_round_refuses_when_rounds_is_not_last(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("rounds:\n  r1: {id: 1, prev: 0}\nseed: 1\n")
    with pytest.raises(ConfigError, match="last section"):
        add_round(path)
    assert path.read_text() == "rounds:\n  r1: {id: 1, prev: 0}\nseed: 1\n"
