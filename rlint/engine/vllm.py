"""The vLLM rollout backend: one ``LLM`` per checkpoint, one batched ``generate`` per request.

Prompts go in as token ids (no re-tokenization). Each of the ``len(prompts) * n`` sequences is
its own vLLM request with its own seed, derived from the request seed and the sequence's
position, so a request's output depends only on the request (the transformers engine's rule).

Log-probabilities are vLLM's ``processed_logprobs``: the sampled token's log-probability after
temperature scaling and top-p masking, i.e. under the distribution the sampler drew from, the
definition the transformers engine uses (greedy decoding: under the raw logits, in both).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from pathlib import Path

from rlint.engine.base import Sample, SamplingRequest

log = logging.getLogger(__name__)

# finish reasons vLLM reports for a completed request, mapped onto the engine interface's two
FINISH_REASONS = {"stop": "stop", "length": "length"}


def vllm_available() -> bool:
    """Whether ``import vllm`` can succeed here (without importing it: that takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def resolve_dtype(dtype: str, checkpoint: str | Path) -> str:
    """The dtype vLLM runs the model in: ``auto`` is the checkpoint's own (config.json), float32 if unset.

    vLLM's own ``auto`` casts a float32 checkpoint to bfloat16 (on a CPU as on a GPU): the
    samples then come from a different model than the one the optimize stage trains, and on a
    CPU without bfloat16 units (no AVX512-BF16 or AMX) each step is about twice as slow.
    """
    if dtype != "auto":
        return dtype
    import json

    config = json.loads((Path(checkpoint) / "config.json").read_text())
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


PROGRESS_SECONDS = 10.0  # a long generation logs its progress at most this often


class LoggedProgress:
    """A progress bar for vLLM's offline loop that writes log lines instead of drawing.

    ``LLM.generate(use_tqdm=factory)`` calls ``factory(iterable, ...)`` while adding requests (this
    iterates it silently) and ``factory(total=..., ...)`` for the run loop, then ``update(n)`` as
    requests finish, reading ``format_dict["elapsed"]`` and setting ``postfix`` (its speed
    estimate). A line is logged when ``interval`` seconds have passed since the last one, so a long
    generation reports at a steady rate in the stage's log (and the flow's), with nothing on a
    terminal. Generation does not depend on it.
    """

    def __init__(self, iterable=None, *, label: str = "generate", interval: float = PROGRESS_SECONDS, total: int | None = None, **_) -> None:
        self.iterable, self.label, self.interval, self.total = iterable, label, interval, total
        self.n, self.postfix = 0, ""
        self.started = self.last = time.monotonic()

    def __iter__(self):
        return iter(self.iterable or ())

    @property
    def format_dict(self) -> dict:
        return {"elapsed": max(time.monotonic() - self.started, 1e-9)}

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval and self.n < (self.total or 0):
            self.last = now
            log.info("%s: %d/%d sequences done, %.0fs%s", self.label, self.n, self.total, now - self.started,
                     f" ({self.postfix})" if self.postfix else "")

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def sequence_seed(seed: int, index: int) -> int:
    """Seed of sequence ``index`` of a request seeded ``seed``: a stable 63-bit hash of both.

    >>> sequence_seed(0, 1) == sequence_seed(0, 1) != sequence_seed(1, 0)
    True
    """
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class VLLMEngine:
    """A checkpoint directory loaded once into vLLM; ``settings`` is a ``VLLMConfig``."""

    name = "vllm"

    def __init__(self, checkpoint: str | Path, settings) -> None:
        # keep the engine core in this process: no child process, no __main__ guard needed
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")  # no usage report over the network
        os.environ.setdefault("DO_NOT_TRACK", "1")
        # on a CPU vLLM binds its OpenMP threads itself and ignores OMP_NUM_THREADS; a value already in the environment wins
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", settings.cpu_threads_bind)
        from transformers import AutoTokenizer
        from vllm import LLM

        from rlint.policy import check_checkpoint

        path = check_checkpoint(checkpoint)
        self.dtype = resolve_dtype(settings.dtype, path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.eos_token_id = self.tokenizer.eos_token_id
        started = time.monotonic()
        self.llm = LLM(
            model=str(path),
            skip_tokenizer_init=False,  # token ids in and out (detokenize=False), but eos known to vLLM
            tensor_parallel_size=settings.tensor_parallel_size,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            max_model_len=settings.max_model_len,
            dtype=self.dtype,
            enforce_eager=settings.enforce_eager,
            logprobs_mode="processed_logprobs",
            seed=0,  # every request carries its own seed
            use_tqdm_on_load=os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper() not in ("ERROR", "CRITICAL"),  # quiet with the rest of vLLM (rlint/cli.py)
            # a prompt split over steps discards a sample, which vLLM 0.32 on the CPU cannot do for
            # a seeded request ("CPU Generator does not use offset"): schedule whole prompts only
            enable_chunked_prefill=False,
        )
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        log.info("vLLM engine on %s ready in %.1fs (%s, max_model_len %d)", path, time.monotonic() - started, self.dtype,
                 self.max_model_len)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def generate(self, request: SamplingRequest, desc: str = "", first_prompt: int = 0) -> list[list[Sample]]:
        """``first_prompt``: the position of ``request.prompts[0]`` in a larger request split over replicas
        (rlint/engine/vllm_dp.py); sequence seeds follow the position in the whole request."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        stop_ids = sorted({self.eos_token_id, *request.stop_token_ids})
        greedy = request.temperature == 0
        prompts, params = [], []
        for i, prompt in enumerate(request.prompts):
            # vLLM stops at max_model_len tokens in all; the transformers engine has no such cap
            room = self.max_model_len - len(prompt)
            if room < 1:
                raise ValueError(
                    f"prompt {first_prompt + i} has {len(prompt)} tokens: no room to generate within "
                    f"sampling.vllm.max_model_len={self.max_model_len}"
                )
            for j in range(request.n):
                prompts.append(TokensPrompt(prompt_token_ids=list(prompt)))
                params.append(SamplingParams(
                    n=1,
                    temperature=request.temperature,
                    top_p=1.0 if greedy else request.top_p,
                    max_tokens=min(request.max_new_tokens, room),
                    seed=sequence_seed(request.seed, (first_prompt + i) * request.n + j),
                    stop_token_ids=stop_ids,
                    logprobs=0,  # the sampled token's only
                    detokenize=False,
                ))
        started = time.monotonic()
        progress = functools.partial(LoggedProgress, label=desc or "generate", interval=PROGRESS_SECONDS)
        outputs = self.llm.generate(prompts, params, use_tqdm=progress) if prompts else []
        samples = []
        for output in outputs:
            completion = output.outputs[0]
            tokens = list(completion.token_ids)
            if completion.finish_reason not in FINISH_REASONS:
                raise RuntimeError(f"vLLM request {output.request_id} ended with {completion.finish_reason!r}")
            logprobs = [step[token].logprob for step, token in zip(completion.logprobs, tokens)]
            samples.append(Sample(tokens, logprobs, FINISH_REASONS[completion.finish_reason]))
        if desc:
            log.info("%s %d sequences, %d tokens, %.1fs", desc, len(samples), sum(len(s.token_ids) for s in samples), time.monotonic() - started)
        return [samples[i * request.n:(i + 1) * request.n] for i in range(len(request.prompts))]
