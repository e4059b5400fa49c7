"""Files and folders rlint reads from outside its own outputs, versioned by content.

``params.yaml`` names a dataset (``task.path``, ``task.heldout_path``) and a model directory
(``bootstrap.model_path``) by path. DVC tracks a parameter by its value, so editing the dataset in
place would rerun nothing. The ``inputs`` section of ``params.yaml`` lists the same paths, keyed by
the parameter that names them; dvc.yaml's stage ``input@<key>`` depends on that path (DVC hashes a
file or a folder by content) and runs ``rlint input --key <key>``, which writes
``data/inputs/<key>.json``: the path, its files, bytes and SHA-256. Every stage that reads the task
or the model depends on ``data/inputs``, so changing a file reruns the stages that read it, and
nothing else changes.

:func:`declared_inputs` (what ``inputs`` must hold) and :func:`content_digest` are the pieces;
:func:`write_input_record` is the command's read → call → write. Imports no torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

INPUT_KEYS = ("task.path", "task.heldout_path", "bootstrap.model_path")  # the parameters that name a file or folder outside rlint's outputs
INPUTS_DIR = Path("data") / "inputs"  # the records; dvc.yaml's consumers depend on this folder
CHUNK_BYTES = 1 << 20


def declared_inputs(task_path: str | None, heldout_path: str | None, model_path: str | None) -> dict[str, str]:
    """What ``params.yaml``'s ``inputs`` section must hold: each set parameter of :data:`INPUT_KEYS` → its path.

    >>> declared_inputs("/data/train.jsonl", None, "/models/m")
    {'task.path': '/data/train.jsonl', 'bootstrap.model_path': '/models/m'}
    >>> declared_inputs(None, None, None)
    {}
    """
    values = dict(zip(INPUT_KEYS, (task_path, heldout_path, model_path)))
    return {key: path for key, path in values.items() if path is not None}


def inputs_yaml(inputs: dict[str, str]) -> str:
    """The ``inputs`` section as one line of YAML, for a message a user can paste.

    >>> inputs_yaml({"task.path": "/data/a b.jsonl", "bootstrap.model_path": "models/x: y"})
    "inputs: {task.path: /data/a b.jsonl, bootstrap.model_path: 'models/x: y'}"
    >>> inputs_yaml({})
    'inputs: {}'
    """
    import yaml

    return "inputs: " + yaml.safe_dump(inputs, default_flow_style=True, sort_keys=False, width=10_000).strip()


def content_digest(path: Path) -> dict:
    """A file's or a folder's content: ``{"kind", "files", "bytes", "sha256"}``.

    A folder's SHA-256 covers every file below it (symbolic links followed), in sorted order of
    relative path, each as its path, its size and its bytes: renaming, moving or editing any file
    changes it. Raises FileNotFoundError when ``path`` is neither a file nor a folder.
    """
    if path.is_file():
        files = [(path.name, path)]
        kind = "file"
    elif path.is_dir():
        files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
        kind = "directory"
    else:
        raise FileNotFoundError(path)
    digest, total = hashlib.sha256(), 0
    for relative, file in files:
        size = file.stat().st_size
        digest.update(f"{relative}\0{size}\0".encode())
        with file.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
        total += size
    return {"kind": kind, "files": len(files), "bytes": total, "sha256": digest.hexdigest()}


def record_path(root: Path, key: str) -> Path:
    """``root/data/inputs/<key>.json``."""
    return root / INPUTS_DIR / f"{key}.json"


def write_input_record(params, key: str, root: Path) -> dict:
    """``rlint input --key KEY``: hash the file or folder ``params.inputs[key]`` names and write its record (atomically).

    Raises ConfigError when ``key`` is not in ``inputs`` or its path does not exist; nothing is written then.
    """
    from rlint.atomic import write_json_atomic
    from rlint.config import ConfigError

    if key not in params.inputs:
        listed = ", ".join(params.inputs) or "none"
        raise ConfigError(f"--key {key!r}: not in params.yaml's inputs (listed: {listed})")
    path = Path(params.inputs[key])
    resolved = path if path.is_absolute() else root / path
    try:
        record = {"key": key, "path": str(path), **content_digest(resolved)}
    except FileNotFoundError:
        raise ConfigError(f"inputs.{key}: {path}: no such file or folder") from None
    except OSError as err:
        raise ConfigError(f"inputs.{key}: {path}: cannot be read: {err.strerror or type(err).__name__}") from None
    write_json_atomic(record_path(root, key), record)
    return record
