"""The names a parameter may take, as plain tuples: params are checked against them without importing
the modules that implement them (rlint/credit.py, rlint/losses.py, rlint/mining.py import numpy or torch).

Each registry refuses a name not listed here and a name registered twice, and tests/config/test_names.py
checks that each tuple equals its registry's keys, so the two cannot drift.
"""

TASKS = ("arithmetic", "dataset")  # rlint/tasks/__init__.py load_task
MODES = ("outcome", "internalized", "oracle")
STRATEGIES = ("search", "repair")  # mine.strategy
SEARCHES = ("binary", "linear", "full")  # mine.search: rlint/mining.py advance
ESTIMATORS = ("grpo", "drgrpo", "internalized", "info_gain", "repair_diff")  # credit.estimator: rlint/credit.py register_estimator
ESTIMATORS_USING_MINING = ("internalized", "repair_diff")  # estimators that consume mined failures and corrected branches
ESTIMATORS_SCORING_ANSWERS = ("info_gain",)  # estimators for which the credit stage scores the answer after each step (loads the policy)
GROUP_STDS = ("population", "sample")
POLICY_LOSSES = ("clipped", "ratio")  # optimize.loss: rlint/losses.py register_policy_loss
AGGREGATIONS = ("token_mean", "seq_mean")
LR_SCHEDULES = ("constant", "linear", "cosine")
MIXED_PRECISIONS = ("no", "bf16", "fp16")
OLD_LOGPROBS = ("sampler", "recompute")
ENGINES = ("auto", "vllm", "transformers")
VLLM_DTYPES = ("auto", "float32", "bfloat16", "float16")


def check_registration(kind: str, name: str, listed: tuple, registry: dict) -> None:
    """Refuse registering ``name`` where rlint.config.names does not list it or it is taken (``kind``: the registry's word)."""
    if name in registry:
        raise ValueError(f"{kind} {name!r}: already registered")
    if name not in listed:
        raise ValueError(f"{kind} {name!r}: add it to rlint.config.names first (params are checked against those names)")
