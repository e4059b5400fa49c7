"""Rollout-stage throughput, vLLM against transformers, and the stage against a bare ``LLM.generate``.

For each model (the embedded one in checkpoints/round=0, and a randomly initialised Llama of
about 27 M parameters with the same character tokenizer, saved to a temporary directory), on
the same prompts (round 1's training problems, ``--prompts`` of them, ``--samples`` each):

- the rollout stage (``rlint.stages.rollout.run``) with ``sampling.engine: transformers`` and
  with ``sampling.engine: vllm``: wall time, engine-load time and the stage's own
  ``tokens_per_second`` (generated tokens over generation plus row building);
- a bare ``vllm.LLM(...).generate`` of the same prompts and sampling settings (n samples per
  prompt, the sampled tokens' logprobs, no detokenization).

Each measurement runs in a fresh process (vLLM sizes its KV cache from the process's memory),
with ``import vllm`` done before the clock starts. Usage::

    python scripts/bench_engines.py [--prompts 128] [--samples 8] [--repeats 3] [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LARGE = {"hidden_size": 512, "intermediate_size": 1536, "layers": 8, "heads": 8, "max_length": 128}


def build_large(path: Path) -> int:
    """A random-init Llama of about 27 M parameters with the embedded tokenizer; its size."""
    from rlint.policy import build_char_tokenizer, build_tiny_llama, save_policy

    tokenizer = build_char_tokenizer()
    model = build_tiny_llama(len(tokenizer), tokenizer, seed=0, **LARGE)
    save_policy(model, tokenizer, path, {"origin": "bench_engines random init", **LARGE})
    return sum(p.numel() for p in model.parameters())


def workspace(root: Path, model: Path, engine: str, prompts: int, samples: int) -> Path:
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sampling"]["engine"] = engine
    params["rollout"].update(prompts_per_round=prompts, samples_per_prompt=samples)
    params["rounds"] = {"r1": {"id": 1, "prev": 0}}
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "round=0").symlink_to(model.resolve())
    return root


def child_stage(root: Path) -> dict:
    """The rollout stage of round 1 in ``root``; engine-load time measured around load_engine."""
    from rlint.config import load_params
    from rlint.stages import rollout

    loads, generates = [], []
    real_load = rollout.load_engine

    def timed_load(*args, **kwargs):
        started = time.monotonic()
        engine = real_load(*args, **kwargs)
        loads.append(time.monotonic() - started)
        real_generate = engine.generate

        def timed_generate(*args, **kwargs):
            started = time.monotonic()
            samples = real_generate(*args, **kwargs)
            generates.append(time.monotonic() - started)
            return samples

        engine.generate = timed_generate
        return engine

    rollout.load_engine = timed_load
    params = load_params(root / "params.yaml")
    started = time.monotonic()
    metrics = rollout.run(params, 1, root)
    wall = time.monotonic() - started
    return {"wall_s": wall, "load_s": loads[0], "generate_s": sum(generates), "tokens": metrics["generated_tokens"],
            "stage_tokens_per_s": metrics["tokens_per_second"], "engine": metrics["engine"]}


def child_bare(root: Path) -> dict:
    """A bare vLLM ``LLM.generate`` of the rollout stage's prompts, with the same settings."""
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from rlint.config import load_params, round_seed
    from rlint.engine.vllm import resolve_dtype, sequence_seed
    from rlint.tasks import load_task

    params = load_params(root / "params.yaml")
    cfg, settings = params.sampling, params.sampling.vllm
    model = root / "checkpoints" / "round=0"
    tokenizer = AutoTokenizer.from_pretrained(model)
    problems = load_task(params.task).problems("train", 0, params.rollout.prompts_per_round)
    prompts = [TokensPrompt(prompt_token_ids=tokenizer(p.prompt, add_special_tokens=False)["input_ids"]) for p in problems]
    started = time.monotonic()
    llm = LLM(model=str(model), tensor_parallel_size=settings.tensor_parallel_size, gpu_memory_utilization=settings.gpu_memory_utilization,
              max_model_len=settings.max_model_len, dtype=resolve_dtype(settings.dtype, model), enforce_eager=settings.enforce_eager,
              logprobs_mode="processed_logprobs", seed=0, enable_chunked_prefill=False)  # as VLLMEngine
    load = time.monotonic() - started
    # one seed per prompt (vLLM seeds its n samples seed, seed + 1, ...): one shared seed would give
    # every prompt the same noise, so the same few samples' lengths
    seed = round_seed(params, 1, "rollout")
    sampling = [SamplingParams(n=params.rollout.samples_per_prompt, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                               seed=sequence_seed(seed, i), logprobs=0, detokenize=False) for i in range(len(prompts))]
    started = time.monotonic()
    outputs = llm.generate(prompts, sampling, use_tqdm=False)
    generate = time.monotonic() - started
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    return {"wall_s": load + generate, "load_s": load, "generate_s": generate, "tokens": tokens, "tokens_per_s": tokens / generate}


def run_child(kind: str, root: Path) -> dict:
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_LOGGING_LEVEL": "WARNING", "VLLM_NO_USAGE_STATS": "1",
           "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(root)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{kind} in {root} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda run: run["wall_s"])[(len(runs) - 1) // 2]


def bench(name: str, model: Path, prompts: int, samples: int, repeats: int, tmp: Path) -> None:
    runs = {"hf": [], "vllm": [], "bare": []}
    for i in range(repeats):  # interleaved, so a slow spell of the machine hits every kind alike
        runs["hf"].append(run_child("stage", workspace(tmp / f"{name}-hf-{i}", model, "transformers", prompts, samples)))
        runs["vllm"].append(run_child("stage", workspace(tmp / f"{name}-vllm-{i}", model, "vllm", prompts, samples)))
        runs["bare"].append(run_child("bare", workspace(tmp / f"{name}-bare-{i}", model, "vllm", prompts, samples)))
    hf, vl, bare = (median_run(runs[kind]) for kind in ("hf", "vllm", "bare"))
    print(f"\n== {name}: {prompts} prompts x {samples} samples, max_new_tokens from params.yaml; median of {repeats} runs")
    for kind, label in (("hf", "transformers stage"), ("vllm", "vLLM stage"), ("bare", "bare LLM.generate")):
        walls = ", ".join(f"{run['wall_s']:.1f}s" for run in runs[kind])
        print(f"wall of each run, {label}: {walls}")
    print(f"rollout stage, transformers: {hf['stage_tokens_per_s']:8.0f} tok/s  ({hf['tokens']} tokens; wall {hf['wall_s']:.1f}s, load {hf['load_s']:.1f}s)")
    print(f"rollout stage, vLLM:         {vl['stage_tokens_per_s']:8.0f} tok/s  ({vl['tokens']} tokens; wall {vl['wall_s']:.1f}s, load {vl['load_s']:.1f}s)")
    print(f"vLLM / transformers:         {vl['stage_tokens_per_s'] / hf['stage_tokens_per_s']:8.2f}x")
    print(f"bare LLM.generate:           {bare['tokens_per_s']:8.0f} tok/s  ({bare['tokens']} tokens; generate {bare['generate_s']:.1f}s, LLM() {bare['load_s']:.1f}s)")
    print(f"stage / bare, wall incl. engine start: {vl['wall_s']:.1f}s / {bare['wall_s']:.1f}s = {vl['wall_s'] / bare['wall_s']:.2f}x")
    stage_work = vl["wall_s"] - vl["load_s"]
    print(f"stage / bare, after engine start:      {stage_work:.1f}s / {bare['generate_s']:.1f}s = {stage_work / bare['generate_s']:.2f}x"
          f"  (stage: generate {vl['generate_s']:.1f}s, the rest {stage_work - vl['generate_s']:.1f}s)")
    per_token = (stage_work / vl["tokens"]) / (bare["generate_s"] / bare["tokens"])
    print(f"stage / bare, seconds per generated token after engine start: {per_token:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement, interleaved; the median is reported")
    parser.add_argument("--skip-large", action="store_true", help="only the embedded model")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, root = args.child[0], Path(args.child[1])
        if kind == "bare" or "engine: vllm" in (root / "params.yaml").read_text():
            # import time (15-25 s here) is left out of every figure: the stage's engine and the
            # bare run import the same modules before their clocks start
            from vllm import LLM, SamplingParams  # noqa: F401
            from vllm.inputs import TokensPrompt  # noqa: F401

        print(json.dumps(child_stage(root) if kind == "stage" else child_bare(root)))
        return
    print(f"load average: {os.getloadavg()}, cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        tmp = Path(tmp)
        bench("embedded (checkpoints/round=0)", REPO / "checkpoints" / "round=0", args.prompts, args.samples, args.repeats, tmp)
        if not args.skip_large:
            size = build_large(tmp / "large")
            bench(f"random-init Llama, {size / 1e6:.1f} M parameters", tmp / "large", args.prompts, args.samples, args.repeats, tmp)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
