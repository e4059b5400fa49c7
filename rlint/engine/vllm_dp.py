"""Data-parallel vLLM: ``sampling.vllm.data_parallel_size`` replicas of the policy, one process each.

vLLM's offline ``LLM`` holds one replica per process (``LLM(data_parallel_size=2)`` in one process
is refused), and its own data-parallel example starts one process per rank. For a dense model the
replicas need no coordination at all, so each replica here is a plain :class:`VLLMEngine` in its
own process, pinned to its own devices: GPUs ``rank * tp .. rank * tp + tp - 1``
(``CUDA_VISIBLE_DEVICES``) or, on a CPU with ``cpu_threads_bind: auto``, an even share of the
cores this process may use (``VLLM_CPU_OMP_THREADS_BIND``).

A request's prompts are cut into contiguous shards, one per replica; each sequence keeps the seed
of its position in the whole request (:func:`rlint.engine.vllm.sequence_seed`), so the samples do
not depend on how the prompts were split (tests/engine/test_vllm_dp.py compares with one replica).
A replica that cannot start stops the others and raises :class:`EngineError` with its message. A
replica exits when this process closes the engine or dies (its end of the pipe closes), so none
is left behind. Across machines, serve the model with ``vllm serve --data-parallel-size`` and
vLLM's multi-node options instead (docs/scaling.md).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path

from rlint.engine.base import Sample, SamplingRequest

log = logging.getLogger(__name__)
START_TIMEOUT = 900.0  # seconds a replica may take to load (weights, CUDA graphs)


def shards(count: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``[start, end)`` ranges covering ``range(count)``, sizes differing by at most one.

    >>> shards(5, 2)
    [(0, 3), (3, 5)]
    >>> shards(1, 3)
    [(0, 1), (1, 1), (1, 1)]
    """
    base, extra = divmod(count, parts)
    bounds, start = [], 0
    for rank in range(parts):
        end = start + base + (rank < extra)
        bounds.append((start, end))
        start = end
    return bounds


def replica_environment(rank: int, replicas: int, tensor_parallel_size: int, gpus: int, cpus: list[int], bind: str) -> dict[str, str]:
    """The variables that pin replica ``rank`` to its devices: its GPUs, else its share of ``cpus`` (when ``bind`` is auto)."""
    if gpus:
        first = rank * tensor_parallel_size
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in range(first, first + tensor_parallel_size))}
    if bind != "auto":
        return {"VLLM_CPU_OMP_THREADS_BIND": bind}
    start, end = shards(len(cpus), replicas)[rank]
    share = cpus[start:end] or cpus[rank % len(cpus):rank % len(cpus) + 1]
    return {"VLLM_CPU_OMP_THREADS_BIND": ",".join(str(c) for c in share)}


def _serve(conn, checkpoint: str, settings, env: dict[str, str]) -> None:
    """One replica: load, say ready, then answer ``(request, first_prompt, desc)`` until told to stop or the parent goes."""
    os.environ.update(env)
    try:
        from rlint.engine.vllm import VLLMEngine

        engine = VLLMEngine(checkpoint, settings)
        conn.send(("ready", engine.max_model_len))
    except Exception as err:  # reported to the parent, which raises it as an EngineError
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        request, first_prompt, desc = message
        try:
            result = engine.generate(request, desc, first_prompt=first_prompt)
            conn.send(("ok", [[(s.token_ids, s.logprobs, s.finish_reason) for s in group] for group in result]))
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}"))
        except BaseException:
            return


class DataParallelVLLM:
    """``settings.data_parallel_size`` :class:`VLLMEngine` replicas behind the engine interface."""

    name = "vllm"

    def __init__(self, checkpoint: str | Path, settings) -> None:
        from transformers import AutoTokenizer

        from rlint.engine import EngineError
        from rlint.engine.vllm import resolve_dtype
        from rlint.policy import check_checkpoint

        path = check_checkpoint(checkpoint)
        self.replicas = settings.data_parallel_size
        self.dtype = resolve_dtype(settings.dtype, path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.eos_token_id = self.tokenizer.eos_token_id
        gpus = _gpu_count()
        if gpus and gpus < self.replicas * settings.tensor_parallel_size:
            raise EngineError(f"sampling.vllm.data_parallel_size={self.replicas}: with tensor_parallel_size {settings.tensor_parallel_size} "
                              f"it needs {self.replicas * settings.tensor_parallel_size} GPUs, this machine has {gpus}")
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited CUDA or OpenMP state
        one = settings.model_copy(update={"data_parallel_size": 1})  # a VLLMConfig; 1 is valid
        started = time.monotonic()
        self._workers = []
        for rank in range(self.replicas):
            env = replica_environment(rank, self.replicas, settings.tensor_parallel_size, gpus, cpus, settings.cpu_threads_bind)
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, str(path), one, env), name=f"rlint-vllm-replica-{rank}")
            process.start()
            child.close()
            self._workers.append((process, parent))
        atexit.register(self.close)  # before multiprocessing's own exit hook, which would wait for the replicas forever
        lengths = []
        for rank, (process, conn) in enumerate(self._workers):
            status, value = self._receive(conn, process, START_TIMEOUT)
            if status != "ready":
                self.close()
                raise EngineError(f"sampling.vllm.data_parallel_size={self.replicas}: replica {rank} did not start on {path}: {value}")
            lengths.append(value)
        self.max_model_len = min(lengths)
        log.info("vLLM: %d data-parallel replicas of %s ready in %.1fs", self.replicas, path, time.monotonic() - started)

    @staticmethod
    def _receive(conn, process, timeout: float):
        deadline = time.monotonic() + timeout
        while not conn.poll(1.0):
            if not process.is_alive():
                return "error", f"the replica process exited with code {process.exitcode}"
            if time.monotonic() > deadline:
                return "error", f"no answer within {timeout:.0f} s"
        try:
            return conn.recv()
        except (EOFError, OSError) as err:
            return "error", f"the replica's pipe closed ({err})"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def generate(self, request: SamplingRequest, desc: str = "") -> list[list[Sample]]:
        from rlint.engine import EngineError

        parts = shards(len(request.prompts), self.replicas)
        busy = []
        for (start, end), (process, conn) in zip(parts, self._workers):
            if end > start:
                conn.send((replace(request, prompts=request.prompts[start:end]), start, desc))
                busy.append((process, conn))
        result: list[list[Sample]] = []
        for rank, (process, conn) in enumerate(busy):
            status, value = self._receive(conn, process, float("inf"))
            if status != "ok":
                raise EngineError(f"vLLM replica {rank} failed: {value}")
            result.extend([Sample(list(tokens), list(logprobs), finish) for tokens, logprobs, finish in group] for group in value)
        return result

    def close(self) -> None:
        """Stop every replica (each exits on its own when this process dies)."""
        for process, conn in self._workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for process, conn in self._workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()
        self._workers = []
        atexit.unregister(self.close)

    def __del__(self) -> None:
        if getattr(self, "_workers", None):
            self.close()


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
