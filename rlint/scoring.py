"""Teacher-forced scoring: the log-probability a policy gives a target after a context.

Used by the ``info_gain`` estimator to read ``P(reference answer | prompt, steps 1..j)`` off the
round's sampling policy, and by the credit stage to recompute a repair's log-probabilities under
the original prompt (it was sampled under the repair prompt). Batched, right-padded, in a fixed order: the same inputs give the same
numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from rlint.losses import token_logprobs


@torch.no_grad()
def target_token_logprobs(model, contexts: list[list[int]], targets: list[list[int]], pad_id: int, batch_size: int,
                          temperature: float = 1.0) -> list[np.ndarray]:
    """``log p(target token t | context, target[:t])`` for each pair. Returns N arrays (len(target_i),) float32.

    contexts, targets: N token-id lists (each context non-empty). Temperature-scaled, as everywhere in rlint.
    """
    out: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(contexts)
    device = next(model.parameters()).device
    order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]) + len(targets[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(contexts[i]) + len(targets[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            n = len(contexts[i]) + len(targets[i])
            input_ids[row, :n] = torch.tensor(list(contexts[i]) + list(targets[i]))
            attention[row, :n] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits[:, :-1]  # (B, L-1, V)
        logprobs = token_logprobs(logits, input_ids[:, 1:].to(device), temperature).cpu()  # (B, L-1)
        for row, i in enumerate(chunk):
            n_context = len(contexts[i])
            out[i] = logprobs[row, n_context - 1:n_context - 1 + len(targets[i])].float().numpy().astype(np.float32)
    return out


@torch.no_grad()
def target_logprobs(model, contexts: list[list[int]], targets: list[list[int]], pad_id: int, batch_size: int, temperature: float = 1.0) -> np.ndarray:
    """Sum of ``log p(target tokens | context)`` for each pair. Returns (N,) float64.

    contexts, targets: N token-id lists (each context non-empty); the target follows its context.
    Log-probabilities are those of the temperature-scaled distribution, as everywhere in rlint.
    """
    out = np.zeros(len(contexts), dtype=np.float64)
    device = next(model.parameters()).device
    order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]) + len(targets[i]))  # similar lengths share a batch
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(contexts[i]) + len(targets[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        scored = torch.zeros((len(chunk), width - 1))  # 1 where position t predicts a target token
        for row, i in enumerate(chunk):
            n_context, n = len(contexts[i]), len(contexts[i]) + len(targets[i])
            input_ids[row, :n] = torch.tensor(list(contexts[i]) + list(targets[i]))
            attention[row, :n] = 1
            scored[row, n_context - 1:n - 1] = 1.0
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits[:, :-1]  # (B, L-1, V)
        logprobs = token_logprobs(logits, input_ids[:, 1:].to(device), temperature).cpu()  # (B, L-1)
        out[chunk] = (logprobs * scored).sum(dim=1).double().numpy()
    return out
