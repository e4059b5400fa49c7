"""The transformers backend: shapes, seeding, stop conditions and sampler log-probabilities."""

import torch

from rlint.engine import SamplingRequest, load_engine
from rlint.config import SamplingConfig
from rlint.losses import token_logprobs


def _engine(path, batch_size=256):
    return load_engine(str(path), SamplingConfig(engine="transformers", batch_size=batch_size))


def test_n_samples_per_prompt_and_seeded(tiny_checkpoint):
    engine = _engine(tiny_checkpoint)
    prompts = [engine.encode("Q:1,+2\n"), engine.encode("Q:33,-4,*2\n")]
    request = SamplingRequest(prompts=prompts, n=3, max_new_tokens=12, seed=7)
    first = engine.generate(request)
    assert [len(group) for group in first] == [3, 3]
    assert all(len(s.token_ids) == len(s.logprobs) <= 12 for g in first for s in g)
    again = engine.generate(request)
    assert [[s.token_ids for s in g] for g in first] == [[s.token_ids for s in g] for g in again]
    other = engine.generate(SamplingRequest(prompts=prompts, n=3, max_new_tokens=12, seed=8))
    assert [[s.token_ids for s in g] for g in first] != [[s.token_ids for s in g] for g in other]


def test_chunking_does_not_change_shapes(tiny_checkpoint):
    request = SamplingRequest(prompts=[[20, 19, 5]] * 5, n=2, max_new_tokens=6, seed=1)
    small = _engine(tiny_checkpoint, batch_size=3).generate(request)
    assert [len(g) for g in small] == [2] * 5


def test_logprobs_match_a_forward_pass(tiny_checkpoint):
    engine = _engine(tiny_checkpoint)
    prompt = engine.encode("Q:12,+7\n")
    for temperature in (1.0, 0.7):
        sample = engine.generate(SamplingRequest(prompts=[prompt], n=1, max_new_tokens=10, seed=3, temperature=temperature))[0][0]
        ids = torch.tensor([prompt + sample.token_ids])
        with torch.no_grad():
            logits = engine.model(input_ids=ids).logits[:, len(prompt) - 1:-1]
        expected = token_logprobs(logits, ids[:, len(prompt):], temperature)[0]
        torch.testing.assert_close(torch.tensor(sample.logprobs), expected, atol=1e-4, rtol=1e-4)


def test_stop_tokens_end_generation(tiny_checkpoint):
    engine = _engine(tiny_checkpoint)
    newline = engine.encode("\n")[0]
    samples = engine.generate(SamplingRequest(prompts=[engine.encode("Q:5,+1\n")], n=8, max_new_tokens=30, seed=0, stop_token_ids=(newline,)))[0]
    for s in samples:
        stops = [i for i, t in enumerate(s.token_ids) if t in (newline, engine.eos_token_id)]
        assert stops == ([len(s.token_ids) - 1] if s.finish_reason == "stop" else [])


def test_step_recorder_gives_exactly_what_output_scores_gave(tiny_checkpoint):
    """Same tokens and bit-identical log-probs as transformers' own warpers with every step's scores kept."""
    engine = _engine(tiny_checkpoint)
    prompts = [engine.encode("Q:12,+7\n"), engine.encode("Q:3,*4,-2\n")]
    for temperature, top_p in ((1.0, 1.0), (0.7, 0.9), (0.0, 1.0)):
        request = SamplingRequest(prompts=prompts, n=3, max_new_tokens=12, seed=5, temperature=temperature, top_p=top_p)
        new = [s for g in engine.generate(request) for s in g]
        flat = [p for p in prompts for _ in range(3)]
        width = max(len(p) for p in flat)
        ids = torch.tensor([[engine.pad_token_id] * (width - len(p)) + p for p in flat])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in flat])
        greedy = temperature == 0
        torch.manual_seed(5)
        out = engine.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=not greedy,
                                    temperature=None if greedy else temperature, top_p=None if greedy else top_p, top_k=None,
                                    eos_token_id=[engine.eos_token_id], pad_token_id=engine.pad_token_id, output_scores=True,
                                    return_dict_in_generate=True)
        tokens = out.sequences[:, width:]
        old = torch.log_softmax(torch.stack(out.scores, 1).float(), -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        for row, sample in enumerate(new):
            assert sample.token_ids == tokens[row, :len(sample.token_ids)].tolist()
            assert sample.logprobs == old[row, :len(sample.token_ids)].tolist()


def test_logged_progress_is_what_vllm_calls_on_a_bar():
    """rlint.engine.vllm.LoggedProgress: iterates what it wraps, counts updates, logs at most every ``interval`` s."""
    import logging

    from rlint.engine.vllm import LoggedProgress

    assert list(LoggedProgress([1, 2, 3], label="x", desc="Adding requests")) == [1, 2, 3]
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("rlint.engine.vllm")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        every = LoggedProgress(label="evaluate", interval=0.0, total=4, desc="Processed prompts", dynamic_ncols=True)
        for _ in range(4):
            every.postfix = "est. speed"
            every.update(1)
        never = LoggedProgress(label="mine", interval=3600.0, total=4)
        for _ in range(4):
            never.update(1)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    messages = [r.getMessage() for r in records]
    assert [m.split(",")[0] for m in messages] == ["evaluate: 1/4 sequences done", "evaluate: 2/4 sequences done", "evaluate: 3/4 sequences done"]
    assert every.n == never.n == 4 and every.format_dict["elapsed"] > 0 and "(est. speed)" in messages[0]
