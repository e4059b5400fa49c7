import pytest

from rlint.config import ConfigError, load_params
from tests.conftest import REPO


def test_repository_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.mode == "internalized"
    assert params.rounds["r2"] == {"id": 2, "prev": 1}


def test_presets_load_and_the_classic_one_is_the_task_before_the_testbed():
    """Every preset is a complete params file (every key DVC tracks written out); classic draws today's old problems."""
    from rlint.tasks import load_task

    for path in sorted((REPO / "presets").glob("*.yaml")):
        load_params(path)
    classic = load_params(REPO / "presets" / "classic.yaml")
    assert classic.task.modulus is None and classic.task.value_max == 99
    assert load_task(classic.task).problems("heldout", 0, 1)[0].prompt == "Q:55,+1,+2,+7,-4,-9\n"


@pytest.mark.parametrize("text,fragment", [
    ("mode: fancy\n", "mode='fancy'"),
    ("rollout:\n  samples_per_promt: 4\n", "rollout: unknown key(s) samples_per_promt"),
    ("optimize:\n  lr: fast\n", "optimize.lr: expected float"),
    ("sampling:\n  engine: vllm-nonexistent\n", "sampling.engine"),
    ("bootstrap:\n  hidden_size: 100\n  heads: 3\n", "divisible"),
    ("rounds:\n  r2: {id: 2, prev: 0}\n", "rounds.r2"),
    ("task:\n  name: dataset\n", "task.path"),
    ("mode: oracle\ntask:\n  name: dataset\n  path: x.jsonl\n", "ground-truth step checker"),
    ("[1, 2]\n", "top level must be a mapping"),
    ("a: [\n", "not valid YAML"),
    ("mine:\n  value_threshold: 1.5\n", "mine.value_threshold"),
    ("sampling:\n  vllm:\n    gpu_memory_fraction: 0.3\n", "sampling.vllm: unknown key(s) gpu_memory_fraction"),
    ("sampling:\n  vllm:\n    dtype: int8\n", "sampling.vllm.dtype='int8'"),
    ("sampling:\n  vllm:\n    gpu_memory_utilization: 1.5\n", "sampling.vllm.gpu_memory_utilization"),
    ("sampling:\n  vllm:\n    enforce_eager: 1\n", "sampling.vllm.enforce_eager: expected bool"),
    ("sampling:\n  vllm:\n    cpu_threads_bind: all\n", "sampling.vllm.cpu_threads_bind='all': use auto, nobind, or CPU ids"),
    ("sampling:\n  vllm:\n    cpu_threads_bind: \"0-1;2\"\n", "sampling.vllm.cpu_threads_bind='0-1;2'"),
    ("credit:\n  continuation_weight: -1\n", "credit.continuation_weight"),
    ("credit:\n  repairer_weight: -0.5\n", "credit.repairer_weight must be >= 0, got -0.5"),
    ("credit:\n  repairer_weight: 0.5\n", "credit.repairer_weight=0.5 trains repair attempts, but mine.strategy='search' makes none"),
    ("mine:\n  strategy: repair\n  repair_temperature: 0.7\ncredit:\n  estimator: repair_diff\n  repairer_weight: 0.5\n",
     "credit.repairer_weight=0.5 trains repair attempts, sampled at mine.repair_temperature=0.7"),
    ("mine:\n  temperature: 0.7\n", "mine.temperature=0.7"),
    ("bootstrap:\n  faithful_share: 1.5\n", "bootstrap.faithful_share must be in [0, 1], got 1.5"),
    ("mine:\n  strategy: guess\n", "mine.strategy='guess'"),
    ("mine:\n  strategy: repair\n", "set credit.estimator: repair_diff"),
    ("mode: oracle\nmine:\n  strategy: repair\n", "mine.strategy='repair' with credit.estimator='internalized' (mode='oracle')"),
    ("mine:\n  repair_max_edit: 0\n", "mine.repair_max_edit must be in (0, 1], got 0"),
    ("mine:\n  repair_samples: 0\n", "mine.repair_samples must be >= 1"),
    ("task:\n  repair_template: '{question} fix it'\n", "task.repair_template='{question} fix it': must contain {attempt}"),
    ("task:\n  repair_template: '{attempt} {answer}'\n", "use only {question} and {attempt}"),
    ("task:\n  repair_chat: true\n", "task.repair_chat: only for task.name 'dataset'"),
    ("task:\n  modulus: 1\n", "task.modulus=1: must be in 2.."),
    ("task:\n  modulus: 2520\n", "task.modulus=2520, task.operand_max=9: no multiplier"),
    ("task:\n  max_steps: 12\nsampling:\n  max_new_tokens: 128\n", "task.max_steps=12: prompt and solution take up to 143 tokens, more than the embedded model's context bootstrap.max_length=128"),
    ("task:\n  min_steps: 4\n  max_steps: 3\n", "task.min_steps=4 and task.max_steps=3"),
    ("task:\n  max_steps: 6\nbootstrap:\n  repair_share: 0.5\n", "bootstrap.max_length=128: a repair of the longest chain (task.max_steps=6) takes up to 133"),
])
def test_bad_params_name_file_and_key(tmp_path, text, fragment):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_a_weight_on_what_the_strategy_does_not_make_is_no_refusal(tmp_path):
    """mine.strategy repair makes no mining continuations: credit.continuation_weight (1 by default) does not tie its repair
    temperature to sampling.temperature; search makes no repair attempts, so mine.repair_temperature is free there too."""
    path = tmp_path / "params.yaml"
    path.write_text("mine:\n  strategy: repair\n  repair_temperature: 0.1\ncredit:\n  estimator: repair_diff\n  continuation_weight: 1.0\n")
    params = load_params(path)
    assert params.mine.repair_temperature == 0.1 and params.credit.continuation_weight == 1.0
    path.write_text("mine:\n  repair_temperature: 0.3\n")
    assert load_params(path).mine.strategy == "search"


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


def test_engine_choice_follows_the_install(monkeypatch):
    from rlint.engine import EngineError, engine_name
    from rlint.engine import vllm as vllm_module

    monkeypatch.setattr(vllm_module, "vllm_available", lambda: False)
    assert engine_name("auto") == "transformers"
    with pytest.raises(EngineError, match="sampling.engine=vllm: vLLM is not installed"):
        engine_name("vllm")
    monkeypatch.setattr(vllm_module, "vllm_available", lambda: True)
    assert engine_name("auto") == "vllm"
    assert engine_name("transformers") == "transformers"


def _safetensors(path, shapes: dict) -> None:
    import json
    import struct

    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * (shape[0] * shape[1])
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)  # the tensors' bytes are not needed to count parameters


def test_auto_picks_vllm_on_a_cpu_from_8m_parameters_and_transformers_below(monkeypatch, tmp_path):
    import rlint.engine as engine_module
    from rlint.checkpoints import parameter_count
    from rlint.engine import AUTO_VLLM_MIN_PARAMETERS_ON_CPU, engine_name
    from rlint.engine import vllm as vllm_module

    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir(), large.mkdir()
    _safetensors(small / "model.safetensors", {"a": [1000, 1000], "b": [1000, 50]})  # 1.05 M, the embedded model's size
    _safetensors(large / "model-00001.safetensors", {"a": [4000, 1000]})
    _safetensors(large / "model-00002.safetensors", {"b": [4000, 1000]})  # 8 M over two shards
    assert parameter_count(small) == 1_050_000 and parameter_count(large) == AUTO_VLLM_MIN_PARAMETERS_ON_CPU
    assert parameter_count(tmp_path / "none") is None
    monkeypatch.setattr(vllm_module, "vllm_available", lambda: True)
    monkeypatch.setattr(engine_module, "_on_gpu", lambda: False)
    assert engine_name("auto", str(small)) == "transformers" and engine_name("auto", str(large)) == "vllm"
    assert engine_name("auto", str(tmp_path / "none")) == "vllm"  # size unknown: the engine that scales
    assert engine_name("vllm", str(small)) == "vllm" and engine_name("transformers", str(large)) == "transformers"  # a pin wins
    monkeypatch.setattr(engine_module, "_on_gpu", lambda: True)
    assert engine_name("auto", str(small)) == "vllm"


@pytest.mark.parametrize("section, key, value", [("optimize", "old_logprobs", "trainer"), ("credit", "group_std", "unbiased"), ("credit", "epsilon", 0)])
def test_trl_matching_options_are_checked(tmp_path, section, key, value):
    import yaml

    from rlint.config import ConfigError, load_params

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({section: {key: value}}))
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        load_params(path)


def test_loss_names_match_the_registry():
    """config lists the loss names so that checking params imports no torch; losses.py registers exactly those."""
    from rlint import config, losses

    assert set(losses.POLICY_LOSSES) == set(config.POLICY_LOSSES) and losses.AGGREGATIONS == config.AGGREGATIONS
    with pytest.raises(ValueError, match="already registered"):
        losses.register_policy_loss("clipped")
    with pytest.raises(ValueError, match="add it to rlint.config.names"):
        losses.register_policy_loss("unlisted")


def test_refusing_params_imports_nothing_heavy(tmp_path):
    """A bad params.yaml is refused before torch, transformers, pyarrow or polars load (a fraction of a second)."""
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text("rollout:\n  prompts_per_round: -1\n")
    code = ("import sys; from rlint.cli import main; assert main(['--root', sys.argv[1], 'rollout', '--round', '1']) == 2; "
            "print(sorted(m for m in ('torch', 'transformers', 'pyarrow', 'polars', 'sympy', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("[]", "['numpy']"), done.stdout  # numpy: the credit estimators' registry
    assert "rollout.prompts_per_round must be >= 1" in done.stderr


def test_vllm_cpu_thread_binding_takes_vllm_s_own_forms():
    from rlint.config import VLLMConfig

    for value in ("auto", "nobind", "0-1", "0,2-3", "0-1|2-3"):
        assert VLLMConfig(cpu_threads_bind=value).cpu_threads_bind == value
