"""The transformers rollout backend: batched ``generate`` with left padding.

Prompts are repeated ``n`` times and cut into chunks of ``batch_size`` sequences; each chunk
is seeded with ``seed + chunk index``, so a request's output depends only on the request.

The sampler's log-probability of each drawn token is taken step by step by a logits processor
(:class:`SampledLogprobs`) placed after the temperature and top-p warpers, so memory holds one
step's scores, ``(B, V)``, instead of every step's (``output_scores`` keeps ``(B, T, V)``: 10 GB
for 50 problems of a 49k-token vocabulary).
"""

from __future__ import annotations

import logging
import time

import torch
from transformers import LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

from rlint.engine.base import Sample, SamplingRequest

log = logging.getLogger(__name__)


class SampledLogprobs(LogitsProcessor):
    """Records ``log_softmax`` of the scores the sampler draws from at each step, keeping only the
    drawn token's value: at step t+1 ``input_ids[:, -1]`` is the token drawn at step t. Returns the
    scores unchanged. After ``generate``, :meth:`finish` takes the last step's tokens. Shapes:
    input_ids (B, P+t), scores (B, V); :meth:`finish` returns (B, T)."""

    def __init__(self) -> None:
        self.pending: torch.Tensor | None = None  # (B, V) log-probs of the step whose token is not yet known
        self.values: list[torch.Tensor] = []  # T-1 tensors (B,)

    def _take(self, tokens: torch.Tensor) -> None:
        if self.pending is not None:
            self.values.append(self.pending.gather(-1, tokens.unsqueeze(-1)).squeeze(-1))
            self.pending = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._take(input_ids[:, -1])
        self.pending = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """The (B, T) log-probabilities of ``new_tokens`` (B, T), the tokens ``generate`` appended."""
        if new_tokens.shape[1]:
            self._take(new_tokens[:, -1])
        return torch.stack(self.values, dim=1) if self.values else torch.zeros(new_tokens.shape, dtype=torch.float32)


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
        # the warpers are ours, in transformers' own order (temperature, then top-p), so that the recorder sees what is sampled from
        recorder = SampledLogprobs()
        processors = LogitsProcessorList()
        if not greedy and request.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(request.temperature))
        if not greedy and request.top_p < 1.0:
            processors.append(TopPLogitsWarper(request.top_p))
        processors.append(recorder)
        torch.manual_seed(seed)
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=request.max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else 1.0,  # 1.0: transformers adds no warper of its own (and ignores the model's defaults)
            top_p=None if greedy else 1.0,
            top_k=None,
            logits_processor=processors,
            eos_token_id=stop_ids,
            pad_token_id=self.pad_token_id,
            return_dict_in_generate=True,
        )
        new_tokens = out.sequences[:, width:]  # (B, T)
        logprobs = recorder.finish(new_tokens)  # (B, T)
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
            if n_chunks > 1:
                log.info("%s %d/%d sequences, %.1fs", desc or "generate", len(samples), len(flat), time.monotonic() - started)
        if desc:  # the vLLM engines' summary line (scripts/bench_round.py reads it)
            log.info("%s %d sequences, %d tokens, %.1fs", desc, len(samples), sum(len(s.token_ids) for s in samples), time.monotonic() - started)
        return [samples[i * request.n:(i + 1) * request.n] for i in range(len(request.prompts))]
