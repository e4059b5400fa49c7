"""Train-set rows as right-padded tensors, and per-row values back out of them.

A train-set row holds ``context_token_ids`` (no loss), ``token_ids`` (trained), and per token
``logprobs`` (the sampler's), ``advantages`` and ``loss_weights``; ``sft`` marks rows eligible
for the supervised term, ``ref_logprobs`` (set by the measuring pass) the reference policy's.
"""

from __future__ import annotations

import torch


def collate(rows: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch. ``input_ids`` (B, L) is context + tokens; the per-token tensors (B, L-1)
    are aligned with the logits that predict position t+1, zero outside trained tokens.
    ``sft_mask`` is 1 on the tokens of rows whose ``sft`` flag is set; ``ref_logprobs`` is filled
    from rows that carry them."""
    width = max(len(r["context_token_ids"]) + len(r["token_ids"]) for r in rows)
    shape = (len(rows), width - 1)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
        "old_logprobs": torch.zeros(shape), "advantages": torch.zeros(shape), "weights": torch.zeros(shape),
        "sft_mask": torch.zeros(shape), "ref_logprobs": torch.zeros(shape),
    }
    for i, r in enumerate(rows):
        context, tokens = list(r["context_token_ids"]), list(r["token_ids"])
        n, start = len(context) + len(tokens), len(context) - 1
        span = slice(start, start + len(tokens))
        batch["input_ids"][i, :n] = torch.tensor(context + tokens)
        batch["attention_mask"][i, :n] = 1
        batch["old_logprobs"][i, span] = torch.tensor(r["logprobs"])
        batch["advantages"][i, span] = torch.tensor(r["advantages"])
        batch["weights"][i, span] = torch.tensor(r["loss_weights"])
        if r.get("sft"):
            batch["sft_mask"][i, span] = 1.0
        if r.get("ref_logprobs") is not None:
            batch["ref_logprobs"][i, span] = torch.tensor(r["ref_logprobs"])
    return batch


def empty_like(row: dict) -> dict:
    """A row that trains nothing: fills a process's micro-batch when its share of a minibatch is empty."""
    return {**row, "loss_weights": [0.0] * len(row["token_ids"]), "sft": False}


def micro_batch(rows: list[dict], part: list[int], filler: dict, pad_id: int, device) -> dict[str, torch.Tensor]:
    """The collated rows ``part`` of ``rows`` on ``device``; one :func:`empty_like` ``filler`` row when ``part`` is empty."""
    return {key: v.to(device) for key, v in collate([rows[i] for i in part] or [empty_like(filler)], pad_id).items()}


def row_values(values: torch.Tensor, rows: list[dict], part: list[int]) -> list[tuple[int, list[float]]]:
    """Per row of a micro-batch, the (B, L-1) per-position ``values`` over that row's completion tokens:
    ``(row index, values)`` pairs, the row index into ``rows``."""
    out = []
    for row, i in enumerate(part):
        start = len(rows[i]["context_token_ids"]) - 1
        out.append((i, values[row, start:start + len(rows[i]["token_ids"])].float().cpu().tolist()))
    return out
