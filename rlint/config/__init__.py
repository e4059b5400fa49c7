"""Typed configuration: one frozen pydantic section per stage, read from ``params.yaml``.

Every field has a default, a one-line help (``description``) and, where simple, its bounds;
``model_validator``s check rules between fields. Unknown keys and wrong types are errors that
name the key, because a misspelt parameter that is silently ignored ruins a run.
docs/parameters.md is generated from these models (scripts/params_reference.py).

- :mod:`rlint.config.names`: the names a parameter may take (registries check against them);
- :mod:`rlint.config.base`: the section base and how a refusal reads;
- :mod:`rlint.config.task`, :mod:`~rlint.config.sampling`, :mod:`~rlint.config.training`: the sections;
- :mod:`rlint.config.params`: :class:`Params` and the rules between sections; :mod:`rlint.config.load`: :func:`load_params`.
"""

from rlint.config.base import Section, constraint, with_changes
from rlint.config.load import MAX_MESSAGE_CHARS, load_params, round_seed
from rlint.config.names import (AGGREGATIONS, ENGINES, ESTIMATORS, ESTIMATORS_USING_MINING, GROUP_STDS, LR_SCHEDULES, MIXED_PRECISIONS, MODES,
                                OLD_LOGPROBS, POLICY_LOSSES, SEARCHES, STRATEGIES, TASKS, VLLM_DTYPES)
from rlint.config.params import LimitsConfig, Params
from rlint.config.sampling import ArchiveConfig, CorrectConfig, EvaluateConfig, MineConfig, RolloutConfig, SamplingConfig, VLLMConfig
from rlint.config.task import BootstrapConfig, TaskConfig, check_prompt_template
from rlint.config.training import CreditConfig, LaunchConfig, LaunchError, OptimizeConfig
from rlint.params_file import ConfigError, ParamsFileError

__all__ = [
    "AGGREGATIONS", "ENGINES", "ESTIMATORS", "ESTIMATORS_USING_MINING", "GROUP_STDS", "LR_SCHEDULES", "MAX_MESSAGE_CHARS", "MIXED_PRECISIONS", "MODES",
    "OLD_LOGPROBS", "POLICY_LOSSES", "SEARCHES", "STRATEGIES", "TASKS", "VLLM_DTYPES",
    "ArchiveConfig", "BootstrapConfig", "ConfigError", "CorrectConfig", "CreditConfig", "EvaluateConfig", "LaunchConfig", "LaunchError", "LimitsConfig",
    "MineConfig", "OptimizeConfig", "Params", "ParamsFileError", "RolloutConfig", "SamplingConfig", "Section", "TaskConfig", "VLLMConfig",
    "check_prompt_template", "constraint", "load_params", "round_seed", "with_changes",
]
