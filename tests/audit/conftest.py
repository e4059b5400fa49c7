"""The real run the audit tests read: two tiny rounds, run once per session."""

from pathlib import Path

import pytest

from rlint.audit.sources import workspace_inputs
from rlint.audit.summary import audit
from tests.audit.run import make_real_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return make_real_run(tmp_path_factory.mktemp("audit") / "ws")


@pytest.fixture(scope="session")
def result(run_dir):
    return audit(workspace_inputs(run_dir))
