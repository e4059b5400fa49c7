"""rlint/inputs.py: the content record of a dataset file or a model folder, and params.yaml's inputs check."""

import json
import shutil

import pytest
import yaml

from rlint.cli import main as rlint_main
from rlint.config import ConfigError, load_params
from rlint.inputs import content_digest, declared_inputs, record_path
from tests.conftest import REPO


def test_a_folder_digest_sees_edits_renames_and_new_files(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights.bin").write_bytes(b"\x00" * 10)
    first = content_digest(folder)
    assert first["kind"] == "directory" and first["files"] == 2 and first["bytes"] == 12
    assert content_digest(folder) == first  # deterministic
    (folder / "weights.bin").write_bytes(b"\x00" * 9 + b"\x01")
    edited = content_digest(folder)
    assert edited["sha256"] != first["sha256"] and edited["bytes"] == first["bytes"]
    (folder / "weights.bin").rename(folder / "weights2.bin")
    assert content_digest(folder)["sha256"] != edited["sha256"]
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.txt").write_text("x")
    assert content_digest(folder)["files"] == 3


def test_a_file_digest_is_its_name_size_and_bytes(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("line\n")
    b.write_text("line\n")
    assert content_digest(a)["kind"] == "file" and content_digest(a)["files"] == 1
    assert content_digest(a)["sha256"] != content_digest(b)["sha256"]  # the name is part of it
    with pytest.raises(FileNotFoundError):
        content_digest(tmp_path / "missing")


def _workspace(tmp_path, task: dict, inputs: dict | None) -> None:
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["task"].update(task)
    if inputs is not None:
        params["inputs"] = inputs
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_params_must_list_every_path_for_dvc_to_version(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    task = {"name": "dataset", "path": str(data)}
    _workspace(tmp_path, task, None)  # inputs: {} from the repo's params.yaml
    with pytest.raises(ConfigError, match=r"inputs.task.path must be .*write inputs: \{task.path: .*train.jsonl\}"):
        load_params(tmp_path / "params.yaml")
    _workspace(tmp_path, task, {"task.path": str(data), "bootstrap.model_path": "/models/m"})
    with pytest.raises(ConfigError, match=r"inputs.bootstrap.model_path: bootstrap.model_path is not set"):
        load_params(tmp_path / "params.yaml")
    _workspace(tmp_path, task, {"task.path": str(data), "weights": "/w"})
    with pytest.raises(ConfigError, match=r"inputs.'weights': not a parameter that names a path"):
        load_params(tmp_path / "params.yaml")
    _workspace(tmp_path, task, declared_inputs(str(data), None, None))
    assert load_params(tmp_path / "params.yaml").inputs == {"task.path": str(data)}
    (tmp_path / "dvc.yaml").unlink()  # no DVC beside it: nothing to version, nothing to check
    _workspace(tmp_path, task, None)
    (tmp_path / "dvc.yaml").unlink()
    assert load_params(tmp_path / "params.yaml").task.path == str(data)


def test_rlint_input_writes_the_record_and_refuses_a_missing_path_with_exit_2(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    _workspace(tmp_path, {"name": "dataset", "path": str(data)}, {"task.path": str(data)})
    assert rlint_main(["--root", str(tmp_path), "input", "--key", "task.path"]) == 0
    record = json.loads(record_path(tmp_path, "task.path").read_text())
    assert record == {"key": "task.path", "path": str(data), **content_digest(data)}
    assert "input task.path:" in capsys.readouterr().out

    assert rlint_main(["--root", str(tmp_path), "input", "--key", "task.heldout_path"]) == 2
    assert "--key 'task.heldout_path': not in params.yaml's inputs (listed: task.path)" in capsys.readouterr().err
    record_path(tmp_path, "task.path").unlink()
    data.unlink()
    assert rlint_main(["--root", str(tmp_path), "input", "--key", "task.path"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rlint input: error: inputs.task.path: ") and "no such file or folder" in err[0]
    assert not list((tmp_path / "data" / "inputs").glob("*")) if (tmp_path / "data" / "inputs").exists() else True
