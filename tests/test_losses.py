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
