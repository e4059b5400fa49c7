"""Policy scores of the credit stage (rlint/credit_scores.py) against a direct forward pass."""

import numpy as np
import pytest


def test_answer_probabilities_match_a_direct_forward(tiny_checkpoint):
    import torch

    from rlint.policy import load_policy
    from rlint.credit_scores import answer_probabilities

    model, tokenizer = load_policy(tiny_checkpoint)
    model.eval()
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    rollouts = []
    for i, completion in enumerate(["3+4=7\n7*2=14\nA:14\n", "3+4=8\nA:8\n", "A:1\n"]):
        ids = encode(completion)
        ends = [k + 1 for k, t in enumerate(ids) if tokenizer.decode([t]) == "\n"]
        rollouts.append({"prompt_token_ids": encode("Q:3,+4,*2\n"), "token_ids": ids, "step_ends": ends, "answer": "14"})
    probs = answer_probabilities(rollouts, model, tokenizer, lambda a: f"A:{a}\n", batch_size=2, temperature=0.8)
    assert [len(p) for p in probs] == [3, 2, 1]  # p_0 .. p_R for R = steps - 1 reasoning steps
    target = encode("A:14\n")
    for rollout, p in zip(rollouts, probs):
        for j, value in enumerate(p):
            context = rollout["prompt_token_ids"] + rollout["token_ids"][: ([0] + rollout["step_ends"])[j]]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([context + target])).logits[0] / 0.8, dim=-1)
            direct = sum(float(logp[len(context) - 1 + k, tok]) for k, tok in enumerate(target))
            assert value == pytest.approx(np.exp(direct), rel=1e-4)
