"""A section takes exactly its keys and types, and a refusal is one line naming the dotted key."""

import pytest

from rlint.config import ConfigError, LaunchConfig, LaunchError, MineConfig, OptimizeConfig, Params, VLLMConfig, with_changes


@pytest.mark.parametrize("section, values, message", [
    (OptimizeConfig, {"lr": "0.1"}, "optimize.lr: expected float, got '0.1'"),
    (OptimizeConfig, {"lr": True}, "optimize.lr: expected float, got True"),
    (OptimizeConfig, {"epochs": 2.0}, "optimize.epochs: expected int, got 2.0"),
    (OptimizeConfig, {"epochs": True}, "optimize.epochs: expected int, got True"),
    (OptimizeConfig, {"clip_high": float("inf")}, "optimize.clip_high: expected a finite number, got inf"),
    (OptimizeConfig, {"gradient_checkpointing": 1}, "optimize.gradient_checkpointing: expected bool, got 1"),
    (OptimizeConfig, {"clip_low": 1}, "optimize.clip_low must be in (0, 1), got 1"),
    (VLLMConfig, {"max_model_len": 1}, "sampling.vllm.max_model_len must be >= 2, got 1"),
    (MineConfig, {"max_failures": -1}, "mine.max_failures must be >= 0, got -1"),
    (MineConfig, {"serach": "binary"}, "mine: unknown key(s) serach; known: continuations_per_probe"),
    (Params, {"optimize": {"launch": {"num_gpus": 2}}}, "optimize.launch: unknown key(s) num_gpus"),
    (Params, {"mode": "fancy"}, "params: mode='fancy': use one of outcome, internalized, oracle"),
])
def test_a_wrong_value_is_one_config_error_naming_the_key(section, values, message):
    with pytest.raises(ConfigError) as err:
        section(**values)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_an_int_is_a_float_and_sections_are_frozen():
    cfg = OptimizeConfig(lr=1)
    assert cfg.lr == 1.0 and type(cfg.lr) is float
    with pytest.raises(Exception):
        cfg.lr = 0.5


def test_with_changes_checks_again():
    params = Params()
    assert with_changes(params, mode="outcome").mode == "outcome" and params.mode == "internalized"
    with pytest.raises(ConfigError, match="mine.repair_samples must be >= 1, got 0"):
        with_changes(params.mine, repair_samples=0)
    with pytest.raises(LaunchError, match="optimize.launch.machine_rank=3"):
        with_changes(LaunchConfig(num_processes=2, num_machines=2), machine_rank=3)
