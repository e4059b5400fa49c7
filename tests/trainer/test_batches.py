import torch

from rlint.trainer.batches import collate, empty_like, micro_batch, row_values

ROWS = [
    {"context_token_ids": [1, 2, 3], "token_ids": [7, 8], "logprobs": [-0.1, -0.2], "advantages": [1.0, 2.0], "loss_weights": [1.0, 0.5]},
    {"context_token_ids": [1], "token_ids": [9, 9, 9], "logprobs": [-1.0, -1.0, -1.0], "advantages": [-1.0] * 3, "loss_weights": [1.0] * 3},
]


def test_collate_aligns_per_token_values_with_predicting_logits():
    batch = collate(ROWS, pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 7, 8], [1, 9, 9, 9, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    # position t of the per-token tensors scores input_ids[t + 1]; context gets zero weight
    assert batch["weights"].tolist() == [[0, 0, 1.0, 0.5], [1, 1, 1, 0]]
    assert batch["advantages"].tolist() == [[0, 0, 1.0, 2.0], [-1, -1, -1, 0]]
    torch.testing.assert_close(batch["old_logprobs"][0, 2:], torch.tensor([-0.1, -0.2]))


def test_row_values_read_back_what_collate_placed():
    batch = collate(ROWS, pad_id=0)
    assert row_values(batch["advantages"], ROWS, [0, 1]) == [(0, [1.0, 2.0]), (1, [-1.0, -1.0, -1.0])]
    assert row_values(batch["advantages"][1:], ROWS, [1]) == [(1, [-1.0, -1.0, -1.0])]


def test_an_empty_share_is_one_row_that_trains_nothing():
    batch = micro_batch(ROWS, [], ROWS[1], pad_id=0, device="cpu")
    assert batch["input_ids"].tolist() == [[1, 9, 9, 9]] and not batch["weights"].any() and not batch["sft_mask"].any()
    assert empty_like({**ROWS[0], "sft": True})["sft"] is False
