"""The transformers rollout backend: batched ``generate`` with left padding.

Prompts are repeated ``n`` times and cut into chunks of ``batch_size`` sequences; each chunk
is seeded with ``seed + chunk index``, so a request's output depends only on the request.
"""

from __future__ import annotations

import logging
import time

import torch

from rlint.engine.base import Sample, SamplingRequest

log = logging.getLogger(__name__)


class TransformersEngine:
    name = "transformers"

    def __init__(self, model, tokenizer, batch_size: int = 256) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    @torch.no_grad()
    def _generate_chunk(self, prompts: list[list[int]], request: SamplingRequest, seed: int) -> list[Sample]:
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)  # (B, P)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)  # (B, P)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt):] = torch.tensor(prompt)
            attention_mask[row, width - len(prompt):] = 1
        stop_ids = sorted({self.eos_token_id, *request.stop_token_ids})
        greedy = request.temperature == 0
        torch.manual_seed(seed)
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=request.max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else request.temperature,
            top_p=None if greedy else request.top_p,
            top_k=None,
            eos_token_id=stop_ids,
            pad_token_id=self.pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
        new_tokens = out.sequences[:, width:]  # (B, T)
        # scores are the processed logits the sampler drew from: log_softmax gives its logprobs.
        scores = torch.stack(out.scores, dim=1).float()  # (B, T, V)
        logprobs = torch.log_softmax(scores, dim=-1).gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)  # (B, T)
        samples = []
        stop_set = set(stop_ids)
        for row in range(len(prompts)):
            tokens = new_tokens[row].tolist()
            length, reason = len(tokens), "length"
            for i, token in enumerate(tokens):
                if token in stop_set:
                    length, reason = i + 1, "stop"
                    break
            samples.append(Sample(tokens[:length], logprobs[row, :length].tolist(), reason))
        return samples

    def generate(self, request: SamplingRequest, desc: str = "") -> list[list[Sample]]:
        flat = [prompt for prompt in request.prompts for _ in range(request.n)]
        samples: list[Sample] = []
        started = time.monotonic()
        n_chunks = (len(flat) + self.batch_size - 1) // self.batch_size
        for chunk in range(n_chunks):
            part = flat[chunk * self.batch_size:(chunk + 1) * self.batch_size]
            samples.extend(self._generate_chunk(part, request, request.seed + chunk))
            if n_chunks > 1 or desc:
                log.info("%s %d/%d sequences, %.1fs", desc or "generate", len(samples), len(flat), time.monotonic() - started)
        return [samples[i * request.n:(i + 1) * request.n] for i in range(len(request.prompts))]
