"""docs/parameters.md is generated from the sections, never copied by hand."""

from rlint.config import Params
from rlint.config.reference import reference
from tests.conftest import REPO


def test_the_committed_reference_is_what_the_script_writes_now():
    assert (REPO / "docs" / "parameters.md").read_text() == reference(), "docs/parameters.md is stale: run python scripts/params_reference.py"


def test_every_key_has_help_text():
    def missing(model, prefix):
        for name, info in type(model).model_fields.items():
            if not info.description:
                yield prefix + name
            value = getattr(model, name)
            if hasattr(type(value), "model_fields"):
                yield from missing(value, f"{prefix}{name}.")

    assert list(missing(Params(), "")) == []
