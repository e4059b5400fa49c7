"""The base of every parameter section: a frozen pydantic model whose refusals are one-line ConfigErrors naming the dotted key.

A section accepts exactly its keys (``extra="forbid"``) and exactly their types (``strict``: no
``"abc"`` read as a float, no ``true`` as an int; an int is a float), finite floats only. Field
constraints (``ge``, ``gt``, ``le``, ``lt``) are data: the refusal and the parameter reference
(docs/parameters.md) both read them. Checks between fields are ``model_validator``s that raise
:class:`ConfigError` with their own message.
"""

from __future__ import annotations

from typing import ClassVar

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from rlint.params_file import ConfigError, short

TYPE_ERRORS = {"int_type": "int", "float_type": "float", "bool_type": "bool", "string_type": "str"}


class Section(BaseModel):
    """A frozen parameter section; ``section`` is its dotted place in params.yaml ("" for the top level)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False, protected_namespaces=())
    section: ClassVar[str] = ""
    error: ClassVar[type[ConfigError]] = ConfigError

    def __init__(self, **values) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            error = self.error(refusal(type(self), err))
            error.refusal = True  # whole: a section around this one (pydantic validates nested sections through __init__) passes it on as is
            raise error from None


def with_changes(obj: Section, **changes) -> Section:
    """``obj`` with some fields replaced, checked again (the dataclasses.replace of a section)."""
    return type(obj)(**{**dict(obj), **changes})


def constraint(info: FieldInfo) -> str:
    """A field's bounds as text: ``>= 1``, ``in (0, 1]``, or "" where it has none."""
    low = high = None
    for m in info.metadata:
        if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
            low = ("[", m.ge) if isinstance(m, annotated_types.Ge) else ("(", m.gt)
        elif isinstance(m, (annotated_types.Le, annotated_types.Lt)):
            high = ("]", m.le) if isinstance(m, annotated_types.Le) else (")", m.lt)
    if low and high:
        return f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    if high:
        return f"{'<=' if high[0] == ']' else '<'} {high[1]}"
    return ""


def _model_at(model: type[Section], loc: tuple) -> type[Section] | None:
    """The section class at ``loc`` (field names) below ``model``, or None where it is not a section."""
    for part in loc:
        info = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, Section) else None
        model = info.annotation if info else None
    return model if isinstance(model, type) and issubclass(model, Section) else None


def refusal(model: type[Section], err: ValidationError) -> str:
    """pydantic's first error as one line naming the dotted key; unknown keys of one section together."""
    errors = err.errors(include_url=False)
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    first = unknown[0] if unknown else errors[0]
    loc = tuple(str(part) for part in first["loc"])
    key = ".".join(p for p in (model.section, *loc) if p)
    value, kind = first.get("input"), first["type"]
    if kind == "extra_forbidden":
        parent = ".".join(p for p in (model.section, *loc[:-1]) if p)
        names = sorted(str(e["loc"][-1])[:40] for e in unknown if tuple(map(str, e["loc"][:-1])) == loc[:-1])
        known = sorted((_model_at(model, loc[:-1]) or model).model_fields)
        return f"{parent + ': ' if parent else ''}unknown key(s) {', '.join(names[:5])}; known: {', '.join(known)}"
    if kind == "value_error":  # a check between fields: its own message, after the section it came from (as params.yaml nests it)
        error = first["ctx"]["error"]
        return str(error) if getattr(error, "refusal", False) else f"{key or 'params'}: {error}"
    if kind in TYPE_ERRORS:
        return f"{key}: expected {TYPE_ERRORS[kind]}, got {short(value)}"
    if kind == "finite_number":
        return f"{key}: expected a finite number, got {short(value)}"
    if kind in ("model_type", "dict_type"):
        return f"{key}: expected a mapping, got {type(value).__name__}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        owner = _model_at(model, loc[:-1])
        info = owner.model_fields[loc[-1]] if owner and loc and loc[-1] in owner.model_fields else None
        bound = constraint(info) if info else first["msg"]
        return f"{key} must be {bound}, got {short(value)}"
    return f"{key}: {first['msg']}"
