"""The parameter reference (docs/parameters.md), generated from the sections: key, type, default, bounds, help.

scripts/params_reference.py writes it; tests/config/test_reference.py fails when the committed file differs.
"""

from __future__ import annotations

import json
import types
import typing

from pydantic.fields import FieldInfo

from rlint.config.base import Section, constraint
from rlint.config.params import Params

HEADER = """# Parameters

Every key of `params.yaml`, generated from the pydantic sections in `rlint/config/` by
`scripts/params_reference.py`: do not edit by hand (tests/config/test_reference.py fails when this file
and the code differ). The default is rlint's own, taken where a key is left out (the repository's
params.yaml and presets/ set their own values); every key `dvc.yaml` tracks must be written out. Unknown keys, wrong types (no `"1"` for a number, no `true`
for an int), non-finite numbers and values outside the bounds are refused with one line naming
the key; rules between keys are checked as well (rlint/config/params.py).
"""


def type_name(annotation) -> str:
    """``int | None`` -> ``int or null``; ``dict`` -> ``mapping``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(annotation))
    return {type(None): "null", dict: "mapping"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def default_text(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True)
    return "null" if value is None else json.dumps(value) if isinstance(value, (bool, str, dict)) else repr(value)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(model: type[Section], prefix: str) -> list[str]:
    """Table rows of ``model``'s own keys (nested sections are tables of their own)."""
    return [f"| `{prefix}{name}` | {type_name(info.annotation)} | `{cell(default_text(info))}` | {cell(constraint(info))} | {cell(info.description or '')} |"
            for name, info in model.model_fields.items() if not _is_section(info.annotation)]


def _is_section(annotation) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Section)


def tables(model: type[Section], prefix: str, title: str) -> list[str]:
    out = [f"## {title}", "", "| key | type | default | bounds | help |", "|---|---|---|---|---|", *rows(model, prefix), ""]
    for name, info in model.model_fields.items():
        if _is_section(info.annotation):
            doc = f"{info.description}" if info.description else ""
            out += tables(info.annotation, f"{prefix}{name}.", f"`{prefix}{name}`: {doc}")
    return out


def reference() -> str:
    """docs/parameters.md as text."""
    return "\n".join([HEADER, *tables(Params, "", "Top level")]).rstrip("\n") + "\n"
