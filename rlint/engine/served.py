"""One vLLM engine per policy checkpoint, shared by the stages that sample from it.

``evaluate@r(k)`` and ``rollout``, ``mine`` and ``correct`` of round k+1 all sample from
checkpoint k. The flow (flows/engine.py) starts one vLLM server for it on loopback, runs those
stages (each still a separate ``dvc repro`` command), and stops it. A stage finds the server in its
environment (``RLINT_ENGINE_URL``, ``RLINT_ENGINE_CHECKPOINT``) and uses it only when it serves the
very checkpoint the stage samples from; otherwise, and whenever it runs on its own (``dvc repro -s
rollout@r2``), it starts its own engine, as before.

The server is vLLM's own (``vllm.entrypoints.openai.api_server``) with its token-in, token-out
endpoint ``/inference/v1/generate`` (``--enable-scale-out``): token ids in, token ids and the
sampled tokens' log-probabilities out, and a full ``SamplingParams`` per request, so a request
is exactly what :class:`rlint.engine.vllm.VLLMEngine` hands to ``LLM.generate``: one sequence per
request, seeded by its position (:func:`rlint.engine.vllm.sequence_seed`), the same engine
settings (``processed_logprobs``, no chunked prefill, the checkpoint's dtype). The samples are
then the same as the in-process engine's (tests/engine/test_served.py compares the bytes a stage
writes both ways).

The server runs under :func:`guarded_main`: it watches the process that started it and, when that
process is gone (a flow killed with SIGKILL, a cancelled run), stops its whole process group, so
no engine outlives the flow.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rlint.engine.base import Sample, SamplingRequest

log = logging.getLogger(__name__)
URL_VARIABLE, CHECKPOINT_VARIABLE = "RLINT_ENGINE_URL", "RLINT_ENGINE_CHECKPOINT"
START_TIMEOUT = 900.0  # seconds the server may take to load (weights; CUDA graphs on a GPU)
CONCURRENCY = 64  # requests in flight: vLLM batches them as it batches an offline call


class ServerError(RuntimeError):
    """The engine server cannot start or answer; the message names the checkpoint or the port."""


def server_command(checkpoint: Path, settings, port: int, dtype: str, python: str = sys.executable) -> list[str]:
    """The vLLM server for ``checkpoint`` with ``sampling.vllm``'s settings, as :class:`VLLMEngine` builds its ``LLM``."""
    command = [python, "-m", "rlint.engine.served", "--parent", str(os.getpid()), "--",
               "--model", str(checkpoint), "--host", "127.0.0.1", "--port", str(port), "--enable-scale-out",
               "--dtype", dtype, "--logprobs-mode", "processed_logprobs", "--seed", "0", "--no-enable-chunked-prefill",
               "--tensor-parallel-size", str(settings.tensor_parallel_size),
               "--gpu-memory-utilization", str(settings.gpu_memory_utilization), "--disable-uvicorn-access-log"]
    if settings.max_model_len is not None:
        command += ["--max-model-len", str(settings.max_model_len)]
    if settings.enforce_eager:
        command.append("--enforce-eager")
    return command


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EngineServer:
    """A started vLLM server for one checkpoint: ``url``, ``environment()`` for the stages, ``stop()``."""

    def __init__(self, checkpoint: str | Path, settings, port: int | None = None, log_path: Path | None = None) -> None:
        from rlint.engine.vllm import resolve_dtype
        from rlint.checkpoints import CheckpointError, check_checkpoint

        try:
            self.checkpoint = Path(check_checkpoint(checkpoint)).resolve()
        except CheckpointError as err:
            raise ServerError(f"engine server for {checkpoint}: {err}") from None
        if port is not None and not port_free(port):
            raise ServerError(f"engine server for {self.checkpoint}: port {port} on 127.0.0.1 is taken (sampling.vllm.server_port)")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
               "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", settings.cpu_threads_bind)}
        self.log_path = log_path
        output = open(log_path, "ab") if log_path else subprocess.DEVNULL
        started = time.monotonic()
        self.process = subprocess.Popen(server_command(self.checkpoint, settings, self.port, resolve_dtype(settings.dtype, self.checkpoint)),
                                        env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        if log_path:
            output.close()
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.started_at, self.start_seconds = started, time.monotonic() - started
        log.info("engine server for %s on port %d ready in %.1fs", self.checkpoint, self.port, self.start_seconds)

    def _wait_ready(self, started: float) -> None:
        import httpx

        while True:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] if self.log_path and self.log_path.exists() else []
                raise ServerError(f"engine server for {self.checkpoint} on port {self.port} exited with code {self.process.returncode}"
                                  + (f": {tail[0][:300]}" if tail else ""))
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > START_TIMEOUT:
                raise ServerError(f"engine server for {self.checkpoint} on port {self.port}: not ready after {START_TIMEOUT:.0f} s")
            time.sleep(0.5)

    def environment(self) -> dict[str, str]:
        return {URL_VARIABLE: self.url, CHECKPOINT_VARIABLE: str(self.checkpoint)}

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 30 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        try:  # its engine-core children share the group; none may outlive it
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def served_for(checkpoint: str | Path, env: dict[str, str] | None = None) -> str | None:
    """The URL of a shared server for exactly ``checkpoint`` in the environment, else None."""
    env = os.environ if env is None else env
    url, served = env.get(URL_VARIABLE), env.get(CHECKPOINT_VARIABLE)
    if not url or not served:
        return None
    return url if Path(served).resolve() == Path(checkpoint).resolve() else None


class ServedEngine:
    """The engine interface over a shared server (same samples as :class:`VLLMEngine` for the same request)."""

    name = "vllm"

    def __init__(self, checkpoint: str | Path, url: str) -> None:
        import httpx
        from transformers import AutoTokenizer

        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
        self.url, self.checkpoint = url, Path(checkpoint)
        self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        self.eos_token_id = self.tokenizer.eos_token_id
        self.client = httpx.Client(timeout=httpx.Timeout(600.0, connect=10.0), limits=httpx.Limits(max_connections=CONCURRENCY))
        try:
            models = self.client.get(url + "/v1/models").json()["data"]
        except (httpx.HTTPError, ValueError, KeyError) as err:
            from rlint.engine import EngineError

            raise EngineError(f"engine server {url} for {checkpoint} does not answer: {err}") from None
        self.max_model_len = int(models[0]["max_model_len"])
        log.info("vLLM engine: the shared server %s for %s (max_model_len %d)", url, checkpoint, self.max_model_len)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def _one(self, prompt: list[int], params: dict) -> Sample:
        response = self.client.post(self.url + "/inference/v1/generate", json={"token_ids": prompt, "sampling_params": params})
        if response.status_code != 200:
            raise RuntimeError(f"engine server {self.url}: HTTP {response.status_code}: {response.text[:300]}")
        choice = response.json()["choices"][0]
        if choice["finish_reason"] not in ("stop", "length"):
            raise RuntimeError(f"engine server {self.url}: a request ended with {choice['finish_reason']!r}")
        tokens = list(choice["token_ids"])
        logprobs = [float(step["logprob"]) for step in choice["logprobs"]["content"]]
        return Sample(tokens, logprobs, choice["finish_reason"])

    def generate(self, request: SamplingRequest, desc: str = "") -> list[list[Sample]]:
        from rlint.engine.vllm import sequence_seed

        stop_ids = sorted({self.eos_token_id, *request.stop_token_ids})
        greedy = request.temperature == 0
        jobs = []
        for i, prompt in enumerate(request.prompts):
            room = self.max_model_len - len(prompt)
            if room < 1:
                raise ValueError(f"prompt {i} has {len(prompt)} tokens: no room to generate within sampling.vllm.max_model_len={self.max_model_len}")
            for j in range(request.n):
                jobs.append((list(prompt), {"n": 1, "temperature": request.temperature, "top_p": 1.0 if greedy else request.top_p,
                                            "max_tokens": min(request.max_new_tokens, room), "seed": sequence_seed(request.seed, i * request.n + j),
                                            "stop_token_ids": stop_ids, "logprobs": 0, "detokenize": False}))
        started = time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            samples = list(pool.map(lambda job: self._one(*job), jobs))
        if desc:
            log.info("%s %d sequences, %d tokens, %.1fs (shared server)", desc, len(samples), sum(len(s.token_ids) for s in samples),
                     time.monotonic() - started)
        return [samples[i * request.n:(i + 1) * request.n] for i in range(len(request.prompts))]


def guarded_main(argv: list[str]) -> None:
    """``python -m rlint.engine.served --parent PID -- <vLLM server args>``: vLLM's OpenAI-compatible server in this
    process, and a thread that stops this process group when process PID is gone."""
    parent = int(argv[argv.index("--parent") + 1])
    server_args = argv[argv.index("--") + 1:]

    def watch() -> None:
        while os.getppid() == parent:  # reparented: the process that started this one is gone
            time.sleep(1.0)
        os.killpg(os.getpgid(0), signal.SIGTERM)
        time.sleep(20)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="rlint-parent-watch").start()
    from vllm.entrypoints.launchers.api_server.entry import main  # what `vllm serve` runs

    sys.argv = ["vllm-server", *server_args]
    main()


if __name__ == "__main__":
    guarded_main(sys.argv[1:])
