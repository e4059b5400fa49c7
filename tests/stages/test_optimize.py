import torch

from rlint.stages.optimize import collate


def test_collate_aligns_per_token_values_with_predicting_logits():
    rows = [
        {"context_token_ids": [1, 2, 3], "token_ids": [7, 8], "logprobs": [-0.1, -0.2], "advantages": [1.0, 2.0], "loss_weights": [1.0, 0.5]},
        {"context_token_ids": [1], "token_ids": [9, 9, 9], "logprobs": [-1.0, -1.0, -1.0], "advantages": [-1.0] * 3, "loss_weights": [1.0] * 3},
    ]
    batch = collate(rows, pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 7, 8], [1, 9, 9, 9, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    # position t of the per-token tensors scores input_ids[t + 1]; context gets zero weight
    assert batch["weights"].tolist() == [[0, 0, 1.0, 0.5], [1, 1, 1, 0]]
    assert batch["advantages"].tolist() == [[0, 0, 1.0, 2.0], [-1, -1, -1, 0]]
    torch.testing.assert_close(batch["old_logprobs"][0, 2:], torch.tensor([-0.1, -0.2]))


# -- the trainer on the tiny model -------------------------------------------------------------------
import json  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from rlint.config import OptimizeConfig, Params  # noqa: E402
from rlint.data import write_rows  # noqa: E402
from rlint.policy import load_policy  # noqa: E402
from rlint.stages import optimize  # noqa: E402
from rlint.stages.optimize import lr_factor, micro_batches, minibatch_plan  # noqa: E402


def test_micro_batches_partition_each_minibatch_evenly_over_processes():
    for n in range(1, 23):
        for world in (1, 2, 3, 4):
            for size in (1, 2, 5):
                shares = [micro_batches(list(range(n)), rank, world, size) for rank in range(world)]
                assert len({len(s) for s in shares}) == 1  # the same number of forward calls on every process
                assert sorted(i for s in shares for part in s for i in part) == list(range(n))
                assert all(len(part) <= size for s in shares for part in s)


def test_plan_and_schedule():
    plan = minibatch_plan(10, 4, 3, seed=5)
    assert plan == minibatch_plan(10, 4, 3, seed=5) and plan != minibatch_plan(10, 4, 3, seed=6)
    for epoch in range(3):
        assert sorted(i for m in plan[epoch * 3:(epoch + 1) * 3] for i in m) == list(range(10))
    assert [lr_factor(s, 10, 0, "constant") for s in (0, 9)] == [1.0, 1.0]
    assert [lr_factor(s, 10, 4, "constant") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(3, 4, 0, "linear") == pytest.approx(0.25) and lr_factor(2, 4, 0, "cosine") == pytest.approx(0.5)


def _own_rows(checkpoint, n=12, seed=0, sft_every=3):
    """Train-set rows of arithmetic solutions, with sampler log-probs computed by the checkpoint itself."""
    model, tok = load_policy(checkpoint)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        a, b = int(torch.randint(1, 9, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
        context = [tok.bos_token_id] + tok.encode(f"Q:{a},+{b}\n", add_special_tokens=False)
        tokens = tok.encode(f"{a}+{b}={a + b}\nA:{a + b}\n", add_special_tokens=False) + [tok.eos_token_id]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([context + tokens])).logits[0, :-1], dim=-1)
        logprobs = [float(logp[len(context) - 1 + k, t]) for k, t in enumerate(tokens)]
        sign = 1.0 if i % 2 == 0 else -1.0
        weights = [1.0] * len(tokens)
        weights[-2:] = [0.0, 0.0]  # a masked tail, as after a first error
        rows.append({"example_id": f"e{i:03d}", "kind": "rollout", "rollout_id": f"e{i:03d}", "round": 1, "policy_version": 0,
                     "problem_id": f"p{i // 4}", "context_token_ids": context, "token_ids": tokens, "logprobs": logprobs,
                     "advantages": [sign] * len(tokens), "loss_weights": weights, "reward": float(sign > 0), "sft": i % sft_every == 0})
    return rows


@pytest.fixture()
def workspace(tmp_path, tiny_checkpoint):
    shutil.copytree(tiny_checkpoint, tmp_path / "checkpoints" / "round=0")
    rows = _own_rows(tiny_checkpoint)
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


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean"])
def test_gradient_accumulation_gives_the_same_update(workspace, aggregation):
    root, _ = workspace
    _run(root, micro_batch_size=6, aggregation=aggregation, sft_weight=0.3)
    whole = _weights(root)
    _run(root, micro_batch_size=2, aggregation=aggregation, sft_weight=0.3)
    accumulated = _weights(root)
    start = load_file(root / "checkpoints" / "round=0" / "model.safetensors")
    for name in whole:
        # compare the updates; Adam divides by sqrt(v) + eps, so float summation order shows only where g is ~0
        update, update_acc = whole[name] - start[name], accumulated[name] - start[name]
        assert torch.linalg.norm(update_acc - update) <= 1e-3 * torch.linalg.norm(update) + 1e-7, name


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_positive_advantages_raise_and_negative_lower_their_tokens(workspace, sign):
    root, rows = workspace
    rows = [{**r, "advantages": [sign] * len(r["token_ids"])} for r in rows]
    write_rows(root, "train_set", 1, rows)
    _run(root, lr=1e-3, minibatch_size=12, micro_batch_size=12)
    before, _ = load_policy(root / "checkpoints" / "round=0")
    after, _ = load_policy(root / "checkpoints" / "round=1")
    batch = optimize.collate(rows, pad_id=0)
    with torch.no_grad():
        old = optimize.policy_forward(before, batch, 1.0)[0]
        new = optimize.policy_forward(after, batch, 1.0)[0]
    trained = batch["weights"] > 0
    change = ((new - old) * trained).sum(dim=1) / trained.sum(dim=1)  # mean log-prob change of each row's trained tokens
    assert torch.all(change * sign > 0), change


def test_fp16_without_a_gpu_is_a_config_error(workspace):
    from rlint.config import ConfigError

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="params.yaml: optimize.mixed_precision='fp16' needs a GPU"):
        _run(workspace[0], mixed_precision="fp16")


# -- the settings matched against TRL's GRPOTrainer (docs/method.md, "Against TRL's GRPOTrainer") ---------
def test_plan_without_reshuffle_repeats_one_order():
    plan = minibatch_plan(10, 4, 3, seed=5, reshuffle=False)
    assert plan[0:3] == plan[3:6] == plan[6:9]
    assert plan[0:3] == minibatch_plan(10, 4, 3, seed=5)[0:3]  # the first epoch is the same either way
    assert sorted(i for m in plan[0:3] for i in m) == list(range(10))


def test_recomputed_old_logprobs_replace_the_samplers(workspace):
    root, rows = workspace
    _run(root, lr=1e-3)
    reference = _weights(root)
    # the sampler's log-probs are off by 0.5 nats: with recompute the update is the one from the model's own
    write_rows(root, "train_set", 1, [{**r, "logprobs": [v - 0.5 for v in r["logprobs"]]} for r in rows])
    metrics = _run(root, lr=1e-3, old_logprobs="recompute")
    assert metrics["logprob_mismatch"] == pytest.approx(0.5, abs=1e-4)  # still measured against the sampler's
    for name, tensor in _weights(root).items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6)
    _run(root, lr=1e-3)  # without recompute the shifted ratios change the update
    assert any(not torch.allclose(t, reference[n], atol=1e-6) for n, t in _weights(root).items())


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
