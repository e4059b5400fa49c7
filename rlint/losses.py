"""Policy losses: pure functions over per-token tensors, registered by name.

The optimize objective for one micro-batch, every term aggregated the same way
(``optimize.aggregation``) over the trained tokens (weight > 0)::

    loss = agg(policy_loss) + kl_coef * agg(k3(policy, reference)) + sft_weight * mean_sft_tokens(-log p)

- policy losses (:data:`POLICY_LOSSES`, ``optimize.loss``) give a per-token loss ``(B, T)`` and
  the tokens whose ratio was clipped: ``clipped`` is the PPO surrogate with separate lower and
  upper clip ranges (Schulman et al. 2017; the asymmetric "clip-higher" of DAPO, arXiv 2503.14476),
  ``ratio`` the unclipped importance-weighted policy gradient ``-r * A``;
- aggregations (:data:`AGGREGATIONS`): ``token_mean`` weights every trained token equally,
  ``seq_mean`` every sequence equally (the mean over its own tokens first);
- the KL penalty uses Schulman's k3 estimator ``exp(ref - logp) - (ref - logp) - 1`` (>= 0,
  unbiased for KL(policy || reference) under samples of the policy);
- the supervised term is the negative log-likelihood of examples that passed the format gate and
  the verifier (the dual-gated SFT of arXiv 2602.01034).

Denominators can be given explicitly so that gradient accumulation over micro-batches and
processes gives exactly the loss of the whole minibatch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rlint.config import names
from rlint.config.names import AGGREGATIONS  # noqa: F401 - re-exported: the names optimize.aggregation accepts

PolicyLoss = Callable[..., tuple[torch.Tensor, torch.Tensor]]
POLICY_LOSSES: dict[str, PolicyLoss] = {}


def register_policy_loss(name: str):
    """Register ``fn(logprobs, old_logprobs, advantages, cfg) -> (per_token_loss (B, T), clipped (B, T) bool)``.

    ``name`` must be listed in ``rlint.config.names.POLICY_LOSSES`` (params are checked without importing
    torch) and not be taken already.
    """
    names.check_registration("policy loss", name, names.POLICY_LOSSES, POLICY_LOSSES)

    def wrap(fn):
        POLICY_LOSSES[name] = fn
        return fn
    return wrap


@register_policy_loss("clipped")
def clipped_ratio_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO clipped surrogate per token: ``-min(r * A, clip(r, 1 - clip_low, 1 + clip_high) * A)``, ``r = exp(logp - old)``.

    All inputs (B, T); ``cfg`` has ``clip_low`` and ``clip_high``. Returns the per-token loss (B, T)
    and where the clip was active (B, T) bool: the ratio left the range in the direction the advantage pushes.
    """
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    clipped_ratio = torch.clamp(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)  # (B, T)
    per_token = -torch.minimum(ratio * advantages, clipped_ratio * advantages)  # (B, T)
    was_clipped = ((ratio < 1.0 - cfg.clip_low) & (advantages < 0)) | ((ratio > 1.0 + cfg.clip_high) & (advantages > 0))
    return per_token, was_clipped.detach()


@register_policy_loss("ratio")
def ratio_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Unclipped importance-weighted policy gradient per token: ``-r * A``. (B, T) each; nothing is clipped."""
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    return -ratio * advantages, torch.zeros_like(ratio, dtype=torch.bool)


def aggregate(values: torch.Tensor, weights: torch.Tensor, how: str, denominator: float | None = None) -> torch.Tensor:
    """Weighted aggregate of a per-token quantity (B, T) -> scalar.

    ``token_mean``: ``sum(w * v) / D`` with ``D = sum(w)`` by default. ``seq_mean``:
    ``sum_b [sum_t w v / sum_t w] / D`` over sequences with some weight, ``D`` their number by
    default. A given ``denominator`` replaces D (the whole minibatch's, under accumulation).
    """
    if how == "token_mean":
        total = weights.sum() if denominator is None else torch.as_tensor(denominator, dtype=values.dtype)
        return (values * weights).sum() / total.clamp_min(1e-8)
    if how == "seq_mean":
        per_seq_weight = weights.sum(dim=1)  # (B,)
        per_seq = (values * weights).sum(dim=1) / per_seq_weight.clamp_min(1e-8)  # (B,)
        count = (per_seq_weight > 0).sum() if denominator is None else torch.as_tensor(denominator, dtype=values.dtype)
        return per_seq.sum() / count.clamp_min(1e-8)
    raise ValueError(f"unknown aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}")


def aggregation_denominator(weights: torch.Tensor, how: str) -> float:
    """What :func:`aggregate` divides by for ``weights`` (B, T): total weight, or sequences with weight."""
    return float(weights.sum()) if how == "token_mean" else float((weights.sum(dim=1) > 0).sum())


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): ``exp(d) - d - 1`` with ``d = ref - logp``. (B, T), >= 0."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, weights: torch.Tensor,
                        clip_low: float, clip_high: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate, token-mean over ``weights`` (B, T). Returns the scalar loss and detached statistics."""
    from types import SimpleNamespace

    per_token, was_clipped = clipped_ratio_loss(logprobs, old_logprobs, advantages, SimpleNamespace(clip_low=clip_low, clip_high=clip_high))
    active = (weights > 0).float()
    stats = {"clip_fraction": (was_clipped.float() * active).sum() / active.sum().clamp_min(1.0)}
    return aggregate(per_token, weights, "token_mean"), stats


def policy_objective(logprobs: torch.Tensor, batch: dict[str, torch.Tensor], cfg, denominators: dict[str, float] | None = None,
                     scale: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The full optimize loss of one micro-batch, and sums for its statistics.

    logprobs: (B, T) trainer log-probabilities of the tokens; ``batch`` holds ``old_logprobs``,
    ``advantages``, ``weights``, ``sft_mask`` and (when ``cfg.kl_coef`` > 0) ``ref_logprobs``, all
    (B, T). ``cfg`` has ``loss``, ``aggregation``, ``kl_coef``, ``sft_weight`` and the loss's own
    fields. ``denominators``: ``{"policy": D, "sft": n}`` of the whole minibatch (default: this
    batch's). The loss is multiplied by ``scale`` (the process count, so that averaging gradients
    over processes gives the minibatch loss). Statistics are sums over trained tokens, so they can
    be added over micro-batches and processes: ``policy_loss``, ``kl``, ``clipped``, ``tokens``,
    ``sft_nll``, ``sft_tokens``.
    """
    weights = batch["weights"]
    denominators = denominators or {"policy": aggregation_denominator(weights, cfg.aggregation), "sft": float(batch["sft_mask"].sum())}
    per_token, was_clipped = POLICY_LOSSES[cfg.loss](logprobs, batch["old_logprobs"], batch["advantages"], cfg)
    loss = aggregate(per_token, weights, cfg.aggregation, denominators["policy"])
    active = (weights > 0).to(logprobs.dtype)
    stats = {"policy_loss": float((per_token.detach() * active).sum()), "clipped": float((was_clipped.float() * active).sum()),
             "tokens": float(active.sum())}
    if cfg.kl_coef > 0:
        kl = k3_kl(logprobs, batch["ref_logprobs"])  # (B, T)
        loss = loss + cfg.kl_coef * aggregate(kl, weights, cfg.aggregation, denominators["policy"])
        stats["kl"] = float((kl.detach() * active).sum())
    if cfg.sft_weight > 0:
        sft_mask = batch["sft_mask"]
        loss = loss + cfg.sft_weight * (-logprobs * sft_mask).sum() / max(denominators["sft"], 1.0)
        stats["sft_nll"] = float((-logprobs.detach() * sft_mask).sum())
        stats["sft_tokens"] = float(sft_mask.sum())
    return loss * scale, stats


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of ``targets`` (B, T) under ``logits / temperature`` (B, T, V) -> (B, T)."""
    return torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def token_logprobs_and_entropy(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`token_logprobs` (B, T) with gradient, and the entropy of each position's distribution (B, T), detached."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)  # (B, T, V)
    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum(dim=-1)  # (B, T)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), entropy
