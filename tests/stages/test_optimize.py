"""The optimize stage: reads the train set and the previous checkpoint, writes the checkpoint and the metrics.
The trainer itself is tested as a library in tests/trainer/."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from rlint.config import OptimizeConfig, Params
from rlint.data import write_rows
from rlint.policy import load_policy
from rlint.stages import optimize
from tests.trainer.test_loop import own_rows


@pytest.fixture()
def workspace(tmp_path, tiny_checkpoint):
    shutil.copytree(tiny_checkpoint, tmp_path / "checkpoints" / "round=0")
    rows = own_rows(tiny_checkpoint)
    write_rows(tmp_path, "train_set", 1, rows)
    return tmp_path, rows


def _run(root, **optimize_kw):
    params = Params(optimize=OptimizeConfig(**{"epochs": 1, "minibatch_size": 6, "micro_batch_size": 6, "lr": 1e-2, **optimize_kw}))
    return optimize.run(params, 1, root)


def _weights(root):
    return load_file(root / "checkpoints" / "round=1" / "model.safetensors")


def test_stage_writes_a_safetensors_checkpoint_and_dvc_metrics(workspace):
    root, rows = workspace
    metrics = _run(root, kl_coef=0.1, sft_weight=0.5)
    assert sorted(p.name for p in (root / "checkpoints" / "round=1").iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "optimizer", "rlint.json", "tokenizer.json", "tokenizer_config.json"]
    on_disk = json.loads((root / "metrics" / "optimize" / "round=1.json").read_text())
    assert on_disk == metrics
    for key in ("loss", "clip_fraction", "kl", "entropy", "grad_norm", "tokens", "logprob_mismatch", "logprob_mismatch_max"):
        assert isinstance(metrics[key], (int, float)), key
    assert "seconds" not in metrics  # wall-clock time would churn dvc.lock
    assert metrics["tokens"] == sum(sum(w > 0 for w in r["loss_weights"]) for r in rows)
    assert metrics["optimizer_steps"] == 2 and metrics["sft_examples"] == 4
    assert metrics["logprob_mismatch"] < 1e-5 and metrics["logprob_mismatch_max"] < 1e-4  # the rows' log-probs are the model's own
    assert metrics["kl"] > 0 and metrics["entropy"] > 0 and metrics["grad_norm"] > 0
    model, _ = load_policy(root / "checkpoints" / "round=1")  # loads as an ordinary HF causal LM


def test_same_params_same_checkpoint_bytes(workspace):
    root, _ = workspace
    first = _run(root, kl_coef=0.1)
    data = (root / "checkpoints" / "round=1" / "model.safetensors").read_bytes()
    assert _run(root, kl_coef=0.1) == first
    assert (root / "checkpoints" / "round=1" / "model.safetensors").read_bytes() == data


def test_fp16_without_a_gpu_is_a_config_error(workspace):
    from rlint.config import ConfigError

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="params.yaml: optimize.mixed_precision='fp16' needs a GPU"):
        _run(workspace[0], mixed_precision="fp16")


def test_optimizer_state_is_carried_to_the_next_round(workspace):
    from rlint.optimizer_state import load_optimizer_state, state_path

    root, rows = workspace
    first = _run(root, carry_optimizer_state=True)
    stored = state_path(root / "checkpoints" / "round=1")
    assert first["optimizer_state_carried"] is False and stored.exists()  # round 1 starts from the base: nothing to carry
    state = load_file(stored)
    assert {float(v) for k, v in state.items() if k.endswith(".step")} == {2.0}  # two optimizer steps
    assert sorted(p.name for p in (root / "checkpoints" / "round=1").iterdir())[-1] == "tokenizer_config.json"
    assert "optimizer" in {p.name for p in (root / "checkpoints" / "round=1").iterdir()}
    load_policy(root / "checkpoints" / "round=1")
    data = stored.read_bytes()
    _run(root, carry_optimizer_state=True)
    assert stored.read_bytes() == data  # reproducible

    write_rows(root, "train_set", 2, [{**r, "round": 2} for r in rows])
    params = Params(optimize=OptimizeConfig(epochs=1, minibatch_size=6, micro_batch_size=6, lr=1e-2, carry_optimizer_state=True))
    second = optimize.run(params, 2, root)
    assert second["optimizer_state_carried"] is True
    assert {float(v) for k, v in load_file(state_path(root / "checkpoints" / "round=2")).items() if k.endswith(".step")} == {4.0}
    carried = load_file(root / "checkpoints" / "round=2" / "model.safetensors")
    fresh_params = Params(optimize=OptimizeConfig(epochs=1, minibatch_size=6, micro_batch_size=6, lr=1e-2, carry_optimizer_state=False))
    optimize.run(fresh_params, 2, root)
    fresh = load_file(root / "checkpoints" / "round=2" / "model.safetensors")
    assert any(not torch.equal(carried[n], fresh[n]) for n in carried)
    assert not state_path(root / "checkpoints" / "round=2").exists()  # carry off: nothing stored

    model, _ = load_policy(root / "checkpoints" / "round=0")  # a state for another model is refused
    other = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))])
    from rlint.optimizer_state import OptimizerStateError

    with pytest.raises(OptimizerStateError, match="state for .* parameters, the model has 1"):
        load_optimizer_state(other, root / "checkpoints" / "round=1")


def test_a_round_without_signal_trains_nothing_and_says_why(workspace, caplog):
    root, rows = workspace
    write_rows(root, "train_set", 1, [{**r, "advantages": [0.0] * len(r["token_ids"]), "reward": 0.0} for r in rows])
    with caplog.at_level("WARNING"):
        metrics = _run(root, carry_optimizer_state=True)
    assert metrics["no_signal"] is True and metrics["optimizer_steps"] == 0 and metrics["all_wrong_groups"] == 3
    message = [r.getMessage() for r in caplog.records if "no learning signal" in r.getMessage()]
    assert len(message) == 1 and "all 3 groups uniform (0 all right, 3 all wrong)" in message[0] and "mine.strategy: repair" in message[0]
    before, after = root / "checkpoints" / "round=0", root / "checkpoints" / "round=1"
    assert (after / "model.safetensors").read_bytes() == (before / "model.safetensors").read_bytes()
    assert json.loads((after / "rlint.json").read_text())["round"] == 1
    load_policy(after)
    # a supervised term is signal even with zero advantages
    assert _run(root, sft_weight=0.5).get("no_signal") is None
