"""Reading a parameters file that cannot be trusted: YAML refused where DVC would refuse it, or where it could blow up.

:func:`read_params_file` returns the raw mapping of ``params.yaml``; :func:`missing_tracked_keys`
lists the keys ``dvc.yaml`` tracks that the file leaves out. Both only import ``yaml``: a bad
parameters file is refused before torch or transformers load (in well under a second).

What is refused, and why:

- duplicate keys at any level: DVC's reader (ruamel.yaml) refuses them, and PyYAML would keep the
  last one silently, so ``rlint`` and ``dvc`` would disagree about the same file;
- aliases and anchors (``*name``, ``&name``, merge keys): a few hundred bytes of nested aliases
  expand to gigabytes ("billion laughs"); parameters never need them;
- nesting deeper than :data:`MAX_DEPTH` (PyYAML composes recursively), a file larger than
  :data:`MAX_BYTES`, keys that are not strings;
- an empty file and a top level that is not a mapping (``[]``, ``0``, ``false``, ``null``): an
  empty file is not "all defaults" but most likely a truncated one.

Values quoted in messages are cut to :data:`VALUE_CHARS` characters (:func:`short`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_BYTES = 65_536  # rlint's params.yaml is 5 kB (100 rounds add 3 kB); the largest allowed file parses in under a second
MAX_DEPTH = 32  # mappings/lists nested deeper than this are refused (rlint's own nest 3 deep)
VALUE_CHARS = 60  # longest quoted value in an error message


class ParamsFileError(ValueError):
    """The parameters file cannot be read as trusted YAML; the message names the line."""


class ConfigError(ValueError):
    """params.yaml is unusable; the message names the file and the key."""


def short(value, width: int = VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``width`` characters, so a message stays one short line.

    >>> short("x" * 100, 10)
    "'xxxxxxxx…"
    >>> short([1, 2])
    '[1, 2]'
    """
    text = repr(value) if not isinstance(value, str) or len(value) <= width else repr(value[:width])
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where installed: 10x faster on a large file


class _StrictLoader(_FAST_LOADER):
    """A safe loader that refuses duplicate and non-string keys (the events were checked before)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ParamsFileError(f"line {line}: key {short(key)} is not a string")
            if key in seen:
                raise ParamsFileError(f"line {line}: duplicate key {short(key)} (first at line {seen[key]}); DVC refuses it too")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_events(text: str) -> None:
    """Refuse aliases, anchors and deep nesting from the event stream, which stops at the first one
    (composing a deeply nested document first costs minutes; expanding aliases, gigabytes)."""
    depth = 0
    for event in yaml.parse(text, Loader=_FAST_LOADER):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise ParamsFileError(f"line {line}: YAML alias *{event.anchor[:20]} is not accepted (write the value out)")
        if getattr(event, "anchor", None):
            raise ParamsFileError(f"line {line}: YAML anchor &{event.anchor[:20]} is not accepted (write the value out)")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ParamsFileError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def read_params_file(path: str | Path) -> dict:
    """The top-level mapping of a parameters file; ParamsFileError (without the path) when it cannot be trusted.

    FileNotFoundError / IsADirectoryError / PermissionError pass through for the caller to name.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ParamsFileError(f"{size} bytes, more than the {MAX_BYTES} a parameters file may have")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ParamsFileError(f"not valid YAML: not UTF-8 at byte {err.start}") from None
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise ParamsFileError("empty (no parameters); write the keys out, or copy the repository's params.yaml")
    try:
        _check_events(text)
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ParamsFileError(f"not valid YAML: {getattr(err, 'problem', None) or type(err).__name__}{where}") from None
    if not isinstance(raw, dict):
        raise ParamsFileError(f"top level must be a mapping of sections, got {type(raw).__name__} {short(raw)}")
    return raw


def _has(raw: dict, dotted: str) -> bool:
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def tracked_keys(dvc_yaml: Path, params_name: str = "params.yaml") -> list[tuple[str, str]]:
    """``(stage, key)`` for each key of ``params_name`` that ``dvc_yaml``'s stages track (their ``params:``
    lists and the ``foreach: ${...}`` they expand); [] when ``dvc_yaml`` cannot be read (DVC will say why)."""
    try:
        spec = read_params_file(dvc_yaml)
    except (OSError, ParamsFileError):
        return []
    stages = spec.get("stages")
    found = []
    for name, stage in (stages.items() if isinstance(stages, dict) else ()):
        if not isinstance(stage, dict):
            continue
        foreach = stage.get("foreach")
        if isinstance(foreach, str) and foreach.startswith("${") and foreach.endswith("}"):
            found.append((name, foreach[2:-1].strip()))
        body = stage.get("do", stage) if "foreach" in stage else stage
        for entry in (body.get("params") or []) if isinstance(body, dict) else []:
            if isinstance(entry, str) and "${" not in entry:
                found.append((name, entry))
            elif isinstance(entry, dict) and isinstance(entry.get(params_name), list):
                found.extend((name, key) for key in entry[params_name] if isinstance(key, str))
    return found


def missing_tracked_keys(params_path: str | Path, raw: dict) -> list[tuple[str, str]]:
    """Keys that ``dvc.yaml`` beside ``params_path`` tracks but ``raw`` leaves out, as ``(stage, key)``.

    DVC reads a tracked key from the file itself, not rlint's defaults: when one is missing, ``dvc
    repro`` runs the stage and then fails recording it. Only ``params.yaml`` (DVC's default
    parameters file) is checked; a file under another name is not read by DVC.
    """
    params_path = Path(params_path)
    dvc_yaml = params_path.parent / "dvc.yaml"
    if params_path.name != "params.yaml" or not dvc_yaml.is_file():
        return []
    return [(stage, key) for stage, key in tracked_keys(dvc_yaml) if not _has(raw, key)]
