"""The clipped policy loss against a per-token loop, and the sign and masking of its gradient."""

import torch

from rlint.losses import clipped_policy_loss, token_logprobs


def loop_loss(new, old, adv, w, lo, hi):
    num = den = 0.0
    for b in range(new.shape[0]):
        for t in range(new.shape[1]):
            r = float(torch.exp(new[b, t] - old[b, t]))
            a = float(adv[b, t])
            num += float(w[b, t]) * -min(r * a, min(max(r, 1 - lo), 1 + hi) * a)
            den += float(w[b, t])
    return num / den


def test_matches_loop_over_shapes_and_seeds():
    for seed in range(30):
        g = torch.Generator().manual_seed(seed)
        b, t = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
        new, old = torch.randn(b, t, generator=g) * 0.3, torch.randn(b, t, generator=g) * 0.3
        adv = torch.randn(b, t, generator=g)
        w = (torch.rand(b, t, generator=g) > 0.3).float()
        w[0, 0] = 1.0
        loss, _ = clipped_policy_loss(new, old, adv, w, 0.2, 0.28)
        assert abs(loss.item() - loop_loss(new, old, adv, w, 0.2, 0.28)) < 1e-5


def test_gradient_sign_and_masking():
    logits = torch.randn(1, 4, 6, requires_grad=True)
    targets = torch.tensor([[1, 2, 3, 4]])
    old = token_logprobs(logits, targets).detach()
    adv = torch.tensor([[1.0, -1.0, 1.0, 5.0]])
    weights = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    loss, _ = clipped_policy_loss(token_logprobs(logits, targets), old, adv, weights, 0.2, 0.2)
    loss.backward()
    with torch.no_grad():
        stepped = logits - 0.5 * logits.grad
        new = token_logprobs(stepped, targets)
    assert new[0, 0] > old[0, 0] and new[0, 2] > old[0, 2]  # positive advantage: more likely
    assert new[0, 1] < old[0, 1]  # negative advantage: less likely
    assert torch.all(logits.grad[0, 3] == 0)  # masked token: exactly zero gradient


# -- losses and aggregations by name ---------------------------------------------------------------
import math  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

from rlint.losses import AGGREGATIONS, POLICY_LOSSES, aggregate, k3_kl, policy_objective  # noqa: E402


def _cfg(**kw):
    base = {"loss": "clipped", "aggregation": "token_mean", "clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.0, "sft_weight": 0.0}
    return SimpleNamespace(**{**base, **kw})


def _loop_token(name, new, old, adv, lo, hi):
    r = math.exp(new - old)
    if name == "ratio":
        return -r * adv, False
    clipped = min(max(r, 1 - lo), 1 + hi)
    return -min(r * adv, clipped * adv), (r < 1 - lo and adv < 0) or (r > 1 + hi and adv > 0)


def _loop_aggregate(values, w, how):
    B, T = len(values), len(values[0])
    if how == "token_mean":
        return sum(values[b][t] * w[b][t] for b in range(B) for t in range(T)) / sum(w[b][t] for b in range(B) for t in range(T))
    seqs = [sum(values[b][t] * w[b][t] for t in range(T)) / sum(w[b]) for b in range(B) if sum(w[b]) > 0]
    return sum(seqs) / len(seqs)


def _random_batch(seed):
    g = torch.Generator().manual_seed(seed)
    b, t = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
    new, old, ref = (torch.randn(b, t, generator=g) * 0.3 - 1.0 for _ in range(3))
    adv = torch.randn(b, t, generator=g)
    w = (torch.rand(b, t, generator=g) > 0.3).float() * torch.rand(b, t, generator=g).add(0.5)
    w[0, 0] = 1.0
    sft = (torch.rand(b, t, generator=g) > 0.5).float()
    return new, {"old_logprobs": old, "advantages": adv, "weights": w, "ref_logprobs": ref, "sft_mask": sft}


def test_every_loss_and_aggregation_matches_a_loop_over_shapes_and_seeds():
    assert set(POLICY_LOSSES) == {"clipped", "ratio"} and AGGREGATIONS == ("token_mean", "seq_mean")
    for seed in range(40):
        new, batch = _random_batch(seed)
        B, T = new.shape
        for name in POLICY_LOSSES:
            cfg = _cfg(loss=name)
            per_token, clipped = POLICY_LOSSES[name](new, batch["old_logprobs"], batch["advantages"], cfg)
            loop = [[_loop_token(name, float(new[b, t]), float(batch["old_logprobs"][b, t]), float(batch["advantages"][b, t]), 0.2, 0.28)
                     for t in range(T)] for b in range(B)]
            torch.testing.assert_close(per_token, torch.tensor([[v for v, _ in row] for row in loop]), atol=1e-5, rtol=1e-5)
            assert clipped.tolist() == [[c for _, c in row] for row in loop]
            for how in AGGREGATIONS:
                values, w = per_token.tolist(), batch["weights"].tolist()
                assert float(aggregate(per_token, batch["weights"], how)) == pytest.approx(_loop_aggregate(values, w, how), rel=1e-5, abs=1e-6)


def test_k3_kl_matches_a_loop_and_is_zero_only_at_equality():
    for seed in range(20):
        new, batch = _random_batch(seed)
        kl = k3_kl(new, batch["ref_logprobs"])
        for (b, t), value in zip(torch.cartesian_prod(torch.arange(new.shape[0]), torch.arange(new.shape[1])).tolist(), kl.flatten().tolist()):
            d = float(batch["ref_logprobs"][b, t] - new[b, t])
            assert value == pytest.approx(math.exp(d) - d - 1, abs=1e-6) and value >= 0
    assert torch.all(k3_kl(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.0, -2.0]])) == 0)


def test_objective_is_the_sum_of_its_terms_and_accumulates_exactly():
    for seed in range(20):
        new, batch = _random_batch(seed)
        for how in AGGREGATIONS:
            cfg = _cfg(aggregation=how, kl_coef=0.3, sft_weight=0.5)
            loss, stats = policy_objective(new, batch, cfg)
            per_token, _ = POLICY_LOSSES["clipped"](new, batch["old_logprobs"], batch["advantages"], cfg)
            want = aggregate(per_token, batch["weights"], how) + 0.3 * aggregate(k3_kl(new, batch["ref_logprobs"]), batch["weights"], how)
            if batch["sft_mask"].sum() > 0:
                want = want + 0.5 * (-new * batch["sft_mask"]).sum() / batch["sft_mask"].sum()
            assert float(loss) == pytest.approx(float(want), rel=1e-5, abs=1e-6)
            assert stats["tokens"] == float((batch["weights"] > 0).sum())
            # gradient accumulation: one micro-batch per sequence with the whole batch's denominators gives the same gradient
            full = new.clone().requires_grad_(True)
            policy_objective(full, batch, cfg)[0].backward()
            from rlint.losses import aggregation_denominator
            denominators = {"policy": aggregation_denominator(batch["weights"], how), "sft": float(batch["sft_mask"].sum())}
            parts = new.clone().requires_grad_(True)
            for b in range(new.shape[0]):
                rows = {k: v[b:b + 1] for k, v in batch.items()}
                policy_objective(parts[b:b + 1], rows, cfg, denominators)[0].backward()
            torch.testing.assert_close(parts.grad, full.grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["clipped", "ratio"])
@pytest.mark.parametrize("how", ["token_mean", "seq_mean"])
def test_every_loss_moves_logprobs_with_the_advantage_sign_and_leaves_masked_tokens_alone(name, how):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, requires_grad=True)
    targets = torch.randint(0, 7, (2, 5))
    old = token_logprobs(logits, targets).detach()
    adv = torch.tensor([[1.0, -1.0, 2.0, -0.5, 3.0], [-2.0, 1.0, 0.7, 4.0, -4.0]])
    weights = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.5, 0.0, 0.0]])
    batch = {"old_logprobs": old, "advantages": adv, "weights": weights, "ref_logprobs": old.clone(), "sft_mask": torch.zeros(2, 5)}
    loss, _ = policy_objective(token_logprobs(logits, targets), batch, _cfg(loss=name, aggregation=how, kl_coef=0.1))
    loss.backward()
    with torch.no_grad():
        new = token_logprobs(logits - 0.1 * logits.grad, targets)
    trained = weights > 0
    assert torch.all((new > old)[trained & (adv > 0)]) and torch.all((new < old)[trained & (adv < 0)])
    assert torch.all(logits.grad[~trained] == 0)  # masked tokens: exactly zero gradient


def test_sft_term_raises_the_likelihood_of_gated_tokens_only():
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 7, requires_grad=True)
    targets = torch.randint(0, 7, (1, 4))
    old = token_logprobs(logits, targets).detach()
    batch = {"old_logprobs": old, "advantages": torch.zeros(1, 4), "weights": torch.tensor([[1.0, 1.0, 1.0, 0.0]]),
             "ref_logprobs": old, "sft_mask": torch.tensor([[1.0, 1.0, 0.0, 0.0]])}
    loss, stats = policy_objective(token_logprobs(logits, targets), batch, _cfg(sft_weight=1.0))
    loss.backward()
    assert stats["sft_tokens"] == 2.0
    with torch.no_grad():
        new = token_logprobs(logits - 0.5 * logits.grad, targets)
    assert torch.all(new[0, :2] > old[0, :2])
    assert torch.all(logits.grad[0, 2:] == 0)  # zero advantage and no sft: no gradient
