"""The names config accepts are the registries' names, and a registry takes each name once."""

import subprocess
import sys

import pytest

from rlint.config import names
from tests.conftest import REPO


def test_each_name_table_equals_its_registry():
    from rlint import credit, losses, mining

    assert tuple(credit.ESTIMATORS) == names.ESTIMATORS
    assert tuple(name for name, entry in credit.ESTIMATORS.items() if entry.uses_mining) == names.ESTIMATORS_USING_MINING
    assert tuple(name for name, entry in credit.ESTIMATORS.items() if entry.needs_answer_probs) == names.ESTIMATORS_SCORING_ANSWERS
    assert tuple(losses.POLICY_LOSSES) == names.POLICY_LOSSES and losses.AGGREGATIONS == names.AGGREGATIONS
    assert mining.SEARCHES == names.SEARCHES and credit.GROUP_STDS == names.GROUP_STDS


def test_a_registry_refuses_a_name_twice_or_unlisted():
    from rlint import credit, losses

    with pytest.raises(ValueError, match="credit estimator 'grpo': already registered"):
        credit.register_estimator("grpo")
    with pytest.raises(ValueError, match="credit estimator 'ppo': add it to rlint.config.names"):
        credit.register_estimator("ppo")
    with pytest.raises(ValueError, match="policy loss 'ratio': already registered"):
        losses.register_policy_loss("ratio")
    with pytest.raises(ValueError, match="policy loss 'dpo': add it to rlint.config.names"):
        losses.register_policy_loss("dpo")
    assert tuple(credit.ESTIMATORS) == names.ESTIMATORS and tuple(losses.POLICY_LOSSES) == names.POLICY_LOSSES  # nothing was added


def test_loading_params_imports_no_algorithm_module():
    """Checking params.yaml (estimator, loss, search names included) imports neither the registries nor numpy or torch."""
    code = ("import sys; from rlint.config import load_params; load_params(sys.argv[1]); "
            "print(sorted(m for m in ('rlint.credit', 'rlint.losses', 'rlint.mining', 'numpy', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(REPO / "params.yaml")], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
