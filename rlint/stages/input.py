"""input: the content record of one file or folder that params.yaml's ``inputs`` names (dvc.yaml's stage ``input@<key>``).

Read → call → write: :func:`rlint.inputs.write_input_record` hashes ``params.inputs[key]`` and
writes ``data/inputs/<key>.json``. Imports no torch.
"""

from __future__ import annotations

from pathlib import Path

from rlint.inputs import write_input_record


def run(params, key: str, root: Path) -> dict:
    return write_input_record(params, key, root)
