"""The training loop on the tiny model, called as a library: no workspace, no files written."""

import pytest
import torch

from rlint.config import OptimizeConfig
from rlint.policy import load_policy
from rlint.trainer.batches import collate
from rlint.trainer.loop import make_accelerator, policy_forward, prepare_model, train


def own_rows(checkpoint, n=12, seed=0, sft_every=3):
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


def _train(checkpoint, rows, **optimize_kw):
    """Train a fresh copy of ``checkpoint`` on copies of ``rows`` (the reference is the policy itself, as in round 1).
    Returns the metrics and the trained model."""
    cfg = OptimizeConfig(**{"epochs": 1, "minibatch_size": 6, "micro_batch_size": 6, "lr": 1e-2, **optimize_kw})
    accelerator = make_accelerator(cfg)
    model, tokenizer = load_policy(checkpoint)
    model = prepare_model(model, cfg, accelerator)
    metrics, seconds = train(model, tokenizer, [dict(r) for r in rows], cfg, accelerator, seed=0, temperature=1.0, ref_is_policy=True)
    assert len(seconds) == metrics["optimizer_steps"]
    return metrics, accelerator.unwrap_model(model)


def _state(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.fixture(scope="module")
def rows(tiny_checkpoint):
    return own_rows(tiny_checkpoint)


def test_metrics_of_one_epoch(tiny_checkpoint, rows):
    metrics, _ = _train(tiny_checkpoint, rows, kl_coef=0.1, sft_weight=0.5)
    assert metrics["tokens"] == sum(sum(w > 0 for w in r["loss_weights"]) for r in rows)
    assert metrics["optimizer_steps"] == 2 and metrics["sft_examples"] == 4 and metrics["examples"] == 12
    assert metrics["logprob_mismatch"] < 1e-5 and metrics["logprob_mismatch_max"] < 1e-4  # the rows' log-probs are the model's own
    assert metrics["kl"] > 0 and metrics["entropy"] > 0 and metrics["grad_norm"] > 0


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean"])
def test_gradient_accumulation_gives_the_same_update(tiny_checkpoint, rows, aggregation):
    whole = _state(_train(tiny_checkpoint, rows, micro_batch_size=6, aggregation=aggregation, sft_weight=0.3)[1])
    accumulated = _state(_train(tiny_checkpoint, rows, micro_batch_size=2, aggregation=aggregation, sft_weight=0.3)[1])
    start = _state(load_policy(tiny_checkpoint)[0])
    for name in whole:
        # compare the updates; Adam divides by sqrt(v) + eps, so float summation order shows only where g is ~0
        update, update_acc = whole[name] - start[name], accumulated[name] - start[name]
        assert torch.linalg.norm(update_acc - update) <= 1e-3 * torch.linalg.norm(update) + 1e-7, name


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_positive_advantages_raise_and_negative_lower_their_tokens(tiny_checkpoint, rows, sign):
    rows = [{**r, "advantages": [sign] * len(r["token_ids"])} for r in rows]
    _, after = _train(tiny_checkpoint, rows, lr=1e-3, minibatch_size=12, micro_batch_size=12)
    before, _ = load_policy(tiny_checkpoint)
    batch = collate(rows, pad_id=0)
    with torch.no_grad():
        old = policy_forward(before, batch, 1.0)[0]
        new = policy_forward(after.eval(), batch, 1.0)[0]
    trained = batch["weights"] > 0
    change = ((new - old) * trained).sum(dim=1) / trained.sum(dim=1)  # mean log-prob change of each row's trained tokens
    assert torch.all(change * sign > 0), change


def test_recomputed_old_logprobs_replace_the_samplers(tiny_checkpoint, rows):
    reference = _state(_train(tiny_checkpoint, rows, lr=1e-3)[1])
    # the sampler's log-probs are off by 0.5 nats: with recompute the update is the one from the model's own
    shifted = [{**r, "logprobs": [v - 0.5 for v in r["logprobs"]]} for r in rows]
    metrics, model = _train(tiny_checkpoint, shifted, lr=1e-3, old_logprobs="recompute")
    assert metrics["logprob_mismatch"] == pytest.approx(0.5, abs=1e-4)  # still measured against the sampler's
    for name, tensor in _state(model).items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6)
    _, model = _train(tiny_checkpoint, shifted, lr=1e-3)  # without recompute the shifted ratios change the update
    assert any(not torch.allclose(t, reference[n], atol=1e-6) for n, t in _state(model).items())
