"""Data-parallel vLLM (rlint/engine/vllm_dp.py): two replicas, one process each, give the samples of one
engine, and leave no process behind."""

from __future__ import annotations

import psutil
import pytest

from rlint.config import SamplingConfig, VLLMConfig
from rlint.engine import SamplingRequest, load_engine
from rlint.engine.vllm import vllm_available
from rlint.engine.vllm_dp import replica_environment, shards
from tests.engine.test_vllm import vllm_checkpoint  # noqa: F401  (the fixture)

SETTINGS = VLLMConfig(gpu_memory_utilization=0.05, enforce_eager=True)


def test_shards_cover_every_prompt_once_in_order():
    for count in range(0, 9):
        for parts in range(1, 5):
            bounds = shards(count, parts)
            assert [i for start, end in bounds for i in range(start, end)] == list(range(count))
            assert max(end - start for start, end in bounds) - min(end - start for start, end in bounds) <= 1


def test_each_replica_gets_its_own_gpus_or_its_share_of_the_cores():
    assert replica_environment(1, 4, 2, gpus=8, cpus=[], bind="auto") == {"CUDA_VISIBLE_DEVICES": "2,3"}
    assert replica_environment(0, 2, 1, gpus=0, cpus=[0, 1, 2, 3], bind="auto") == {"VLLM_CPU_OMP_THREADS_BIND": "0,1"}
    assert replica_environment(1, 2, 1, gpus=0, cpus=[0, 1, 2, 3], bind="auto") == {"VLLM_CPU_OMP_THREADS_BIND": "2,3"}
    assert replica_environment(1, 3, 1, gpus=0, cpus=[5], bind="auto") == {"VLLM_CPU_OMP_THREADS_BIND": "5"}  # fewer cores than replicas
    assert replica_environment(1, 2, 1, gpus=0, cpus=[0, 1], bind="nobind") == {"VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def test_a_data_parallel_size_below_1_is_refused():
    from rlint.config import ConfigError

    with pytest.raises(ConfigError, match="data_parallel_size"):
        VLLMConfig(data_parallel_size=0)


@pytest.mark.slow
@pytest.mark.scale
@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (make install installs it)")
def test_two_replicas_sample_what_one_engine_samples_and_stop_with_it(vllm_checkpoint):  # noqa: F811
    from rlint.engine.vllm_dp import DataParallelVLLM

    request = SamplingRequest(prompts=[[1, 5 + i, 7, 9][: 2 + i % 3] for i in range(7)], n=3, temperature=1.0, max_new_tokens=12, seed=11)
    # one engine, in a fresh process of its own: in this process vLLM-CPU would budget its KV cache against the memory
    # that earlier tests' in-process engines still hold (tests/engine/test_vllm.py)
    one = DataParallelVLLM(vllm_checkpoint, SETTINGS)
    expected = one.generate(request)
    one.close()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    two = load_engine(str(vllm_checkpoint), SamplingConfig(engine="vllm", vllm=VLLMConfig(**{**SETTINGS.__dict__, "data_parallel_size": 2})))
    replicas = [p for p in psutil.Process().children(recursive=True)  # multiprocessing's resource tracker is no replica: it lives with pytest
                if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())]
    assert len(replicas) == 2 and two.replicas == 2
    got = two.generate(request)
    assert [[s.token_ids for s in group] for group in got] == [[s.token_ids for s in group] for group in expected]
    for group_got, group_expected in zip(got, expected):
        for a, b in zip(group_got, group_expected):
            assert a.finish_reason == b.finish_reason
            assert max((abs(x - y) for x, y in zip(a.logprobs, b.logprobs)), default=0.0) < 1e-4
    assert two.generate(SamplingRequest(prompts=[[1, 5]], n=2, seed=3, max_new_tokens=4))[0]  # fewer prompts than replicas
    two.close()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in replicas)


@pytest.mark.slow
@pytest.mark.scale
@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (make install installs it)")
def test_the_rollout_stage_writes_the_same_bytes_on_two_replicas_and_exits(tmp_path, vllm_checkpoint):  # noqa: F811
    """The real CLI, as DVC calls it, with sampling.vllm.data_parallel_size 1 and 2: identical rollout Parquet, and the
    two-replica process ends by itself (no replica keeps it alive)."""
    import hashlib
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO, TINY_PARAMS

    written = {}
    for replicas in (1, 2):
        root = tmp_path / f"dp{replicas}"
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        for section, values in TINY_PARAMS.items():
            params[section].update(values)
        params["sampling"].update(engine="vllm", vllm={**params["sampling"]["vllm"], "gpu_memory_utilization": 0.05,
                                                       "data_parallel_size": replicas})
        root.mkdir()
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        shutil.copytree(vllm_checkpoint, root / "checkpoints" / "round=0")
        done = subprocess.run([sys.executable, "-m", "rlint.cli", "--root", str(root), "rollout", "--round", "1"],
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (f"{replicas} data-parallel replicas" in done.stderr) == (replicas == 2)
        written[replicas] = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                             for p in sorted((root / "data").rglob("*")) if p.is_file()}
    assert written[1] and written[2] == written[1]
