"""Adding a round to params.yaml, keeping the file's comments and layout."""

from __future__ import annotations

from pathlib import Path

import yaml

from rlint.config import ConfigError, load_params
from rlint.atomic import replace_file_atomic


def add_round(params_path: str | Path) -> int:
    """Append ``r<k>: {id: k, prev: k-1}`` to the ``rounds`` section (the last section); returns k."""
    path = Path(params_path)
    params = load_params(path)
    text = path.read_text(encoding="utf-8")
    lines = text.rstrip("\n").split("\n")
    starts = [i for i, line in enumerate(lines) if line and not line[0].isspace() and not line.startswith("#")]
    if not starts or not lines[starts[-1]].startswith("rounds:"):
        raise ConfigError(f"{path}: 'rounds' must be the last section to add a round automatically")
    next_id = max((item["id"] for item in params.rounds.values()), default=0) + 1
    if lines[starts[-1]].strip() != "rounds:":  # "rounds: {}" inline form
        lines[starts[-1]] = "rounds:"
    lines.append(f"  r{next_id}: {{id: {next_id}, prev: {next_id - 1}}}")
    new_text = "\n".join(lines) + "\n"
    assert yaml.safe_load(new_text)["rounds"][f"r{next_id}"] == {"id": next_id, "prev": next_id - 1}
    replace_file_atomic(path, lambda tmp: tmp.write_text(new_text, encoding="utf-8"))
    return next_id
