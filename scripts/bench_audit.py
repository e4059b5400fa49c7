"""Benchmark of ``rlint audit`` at scale: generate many rounds of realistic Parquet, then time the summary.

    python scripts/bench_audit.py                       # 50 rounds x 200,000 rollouts in a temporary dir
    python scripts/bench_audit.py --rounds 5 --rollouts 20000 --keep /tmp/bench
    python scripts/bench_audit.py --keep /tmp/bench --token-lists   # + the path for old train sets

Every dataset the summary reads is generated with the schema of ``rlint/data.py`` (rollouts,
failures, corrections, branches, train_set with its per-row advantage summaries, eval, archive,
metrics JSON), with short list columns (8 completion tokens) to fit disk and memory;
continuations are not generated (the summary does not read them). Then ``rlint audit`` runs in
fresh processes (imports included): cold (the first audit: no cache; and ``--no-cache``), warm
(the per-round advantage-moment cache of ``ROOT/audit/cache`` holds every round), and with plots
and HTML. Each line gives the wall time, the CPU time (user + sys) and the machine load."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rlint.data import dataset_path, write_atomic  # noqa: E402
from rlint.schemas import SCHEMA_VERSION, SCHEMAS  # noqa: E402

TOKENS = 8  # completion tokens per row (short lists keep 50 x 200,000 rollouts at a few GB)
PROMPT_TOKENS = 6
STEPS = 4


def _lists(n: int, width: int, values: np.ndarray) -> pa.ListArray:
    offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values))


def _table(dataset: str, columns: dict) -> pa.Table:
    schema = SCHEMAS[dataset]
    n = len(next(iter(columns.values())))
    # columns a benchmark does not model (the repair columns of search-mined failures, say) are null
    return pa.Table.from_arrays([columns[name] if name in columns else pa.nulls(n, schema.field(name).type) for name in schema.names], schema=schema)


def advantage_summaries(adv: np.ndarray, weights: np.ndarray) -> dict[str, pa.Array]:
    """The train set's per-row summary columns, as rlint.train_set.advantage_summary gives them, for (rows, tokens) arrays."""
    values, trained = adv.astype(np.float32).astype(np.float64), weights.astype(np.float32) > 0
    none = trained.sum(1) == 0
    return {
        "trained_tokens": pa.array(trained.sum(1).astype(np.int32)),
        "advantage_sum": pa.array(np.where(trained, values, 0.0).sum(1)),
        "advantage_sum_sq": pa.array(np.where(trained, values * values, 0.0).sum(1)),
        "positive_tokens": pa.array((trained & (values > 0)).sum(1).astype(np.int32)),
        "negative_tokens": pa.array((trained & (values < 0)).sum(1).astype(np.int32)),
        "advantage_min": pa.array(np.where(trained, values, np.inf).min(1).astype(np.float32), mask=none),
        "advantage_max": pa.array(np.where(trained, values, -np.inf).max(1).astype(np.float32), mask=none),
    }


def make_round(root: Path, k: int, n: int, rng: np.random.Generator) -> dict[str, int]:
    """Write round ``k``: ``n`` rollouts, a failure per wrong rollout, its correction, branches, train set, eval, archive."""
    samples = 8
    problem = np.arange(n) // samples
    sample = (np.arange(n) % samples).astype(np.int32)
    rollout_ids = [f"r{k}-train-{p:07d}-s{s}" for p, s in zip(problem, sample)]
    problem_ids = [f"train-{p:07d}" for p in problem]
    accuracy = min(0.9, 0.3 + 0.01 * k)
    reward = (rng.random(n) < accuracy).astype(np.float32)
    reward_mask = rng.random(n) < 0.01  # unscorable
    true_step = rng.integers(1, STEPS + 1, n).astype(np.int32)
    right = (reward == 1.0) & ~reward_mask
    rounds = pa.array(np.full(n, k, dtype=np.int32))
    version = pa.array(np.full(n, k - 1, dtype=np.int32))
    logprobs = _lists(n, TOKENS, -rng.random(n * TOKENS, dtype=np.float32))
    write_atomic(_table("rollouts", {
        "rollout_id": pa.array(rollout_ids), "round": rounds, "policy_version": version, "problem_id": pa.array(problem_ids),
        "sample_index": pa.array(sample), "prompt": pa.array([f"Q:{p % 97},+{p % 7}\n" for p in problem]),
        "answer": pa.array([str(p % 97) for p in problem]),
        "prompt_token_ids": _lists(n, PROMPT_TOKENS, rng.integers(0, 30, n * PROMPT_TOKENS, dtype=np.int32)),
        "token_ids": _lists(n, TOKENS, rng.integers(0, 30, n * TOKENS, dtype=np.int32)), "logprobs": logprobs,
        "step_ends": _lists(n, STEPS, np.tile(np.arange(2, TOKENS + 1, 2, dtype=np.int32), n)),
        "completion": pa.array(["1+2=3\n3+4=7\nA:7\n"] * n), "finish_reason": pa.array(["stop"] * n),
        "reward": pa.array(reward, mask=reward_mask), "true_first_error_step": pa.array(true_step, mask=right),
        "archive_id": pa.nulls(n, pa.string()), "archived_prefix_token_count": pa.array(np.zeros(n, dtype=np.int32)),  # fresh problems, no replays
    }), dataset_path(root, "rollouts", k))

    failed = np.flatnonzero(~right)
    f = len(failed)
    located = rng.random(f) < 0.7
    first = np.where(rng.random(f) < 0.75, true_step[failed], rng.integers(1, STEPS + 1, f)).astype(np.int32)
    failure_ids = pa.array([rollout_ids[i] for i in failed])
    f_rounds, f_version = pa.array(np.full(f, k, dtype=np.int32)), pa.array(np.full(f, k - 1, dtype=np.int32))
    spent = rng.integers(0, 16, f).astype(np.int32)
    write_atomic(_table("failures", {
        "failure_id": failure_ids, "rollout_id": failure_ids, "round": f_rounds, "policy_version": f_version,
        "problem_id": pa.array([problem_ids[i] for i in failed]), "n_steps": pa.array(np.full(f, STEPS, dtype=np.int32)),
        "first_error_step": pa.array(first, mask=~located), "value_before": pa.array(rng.random(f, dtype=np.float32)),
        "value_after": pa.array(np.zeros(f, dtype=np.float32)),
        "probe_steps": _lists(f, 2, rng.integers(0, STEPS, 2 * f, dtype=np.int32)),
        "probe_values": _lists(f, 2, rng.random(2 * f, dtype=np.float32)),
        "decided_by": pa.array(np.where(located, "probe", "prompt_unsolved")), "continuations_spent": pa.array(spent),
        "tokens_spent": pa.array(spent * 20), "true_first_error_step": pa.array(true_step[failed]),
    }), dataset_path(root, "failures", k))

    corrected = located & (rng.random(f) < 0.9)
    write_atomic(_table("corrections", {
        "failure_id": failure_ids, "round": f_rounds,
        "status": pa.array(np.where(~located, "unlocated", np.where(corrected, "corrected", "uncorrected"))),
        "samples_spent": pa.array(np.where(located, rng.integers(0, 16, f), 0).astype(np.int32)),
        "n_branches": pa.array(corrected.astype(np.int32)),
    }), dataset_path(root, "corrections", k))

    parents = failed[corrected]
    b = len(parents)
    branch_ids = [f"{rollout_ids[i]}-p{max(0, s - 1)}-c0" for i, s in zip(parents, first[corrected])]
    b_rounds, b_version = pa.array(np.full(b, k, dtype=np.int32)), pa.array(np.full(b, k - 1, dtype=np.int32))
    branch_tokens = rng.integers(0, 30, b * TOKENS, dtype=np.int32)
    branch_logprobs = -rng.random(b * TOKENS, dtype=np.float32)
    write_atomic(_table("branches", {
        "branch_id": pa.array(branch_ids), "failure_id": pa.array([rollout_ids[i] for i in parents]),
        "parent_rollout_id": pa.array([rollout_ids[i] for i in parents]), "round": b_rounds, "policy_version": b_version,
        "problem_id": pa.array([problem_ids[i] for i in parents]), "branch_step": pa.array(np.maximum(first[corrected] - 1, 0)),
        "branch_token_offset": pa.array(np.maximum(first[corrected] - 1, 0) * 2), "token_ids": _lists(b, TOKENS, branch_tokens),
        "logprobs": _lists(b, TOKENS, branch_logprobs), "completion": pa.array(["A:7\n"] * b),
        "reward": pa.array(np.ones(b, dtype=np.float32)), "value_before": pa.array(rng.random(b, dtype=np.float32)),
    }), dataset_path(root, "branches", k))

    # per-token credit as rlint/credit.py gives it: the GRPO outcome advantage of the rollout's group
    # on every token; a located failure: 0 on its good prefix, V(e) - V(e-1) on step e, masked after;
    # a branch: reward - V(branch point) on every token
    t = n + b
    group = np.nan_to_num(reward.reshape(-1, samples).astype(np.float64))
    outcome = ((group - group.mean(1, keepdims=True)) / (group.std(1, keepdims=True) + 1e-6)).reshape(-1)
    step = np.tile(np.arange(TOKENS) // (TOKENS // STEPS) + 1, n).reshape(n, TOKENS)  # step of each token
    error = np.full(n, STEPS + 1)
    error[failed[located]] = first[located]
    value_before = np.round(rng.random(n) * 8) / 8  # M = 8 continuations per probe
    rollout_adv = np.where(step < error[:, None], np.where(error[:, None] <= STEPS, 0.0, outcome[:, None]),
                           np.where(step == error[:, None], -value_before[:, None], outcome[:, None]))
    rollout_w = (step <= error[:, None]).astype(np.float32)
    branch_adv = np.repeat(1.0 - np.round(rng.random(b) * 8) / 8, TOKENS)
    adv = np.concatenate([rollout_adv.reshape(-1), branch_adv]).astype(np.float32)
    weights = np.concatenate([rollout_w.reshape(-1), np.ones(b * TOKENS, dtype=np.float32)])
    train_rollouts = rollout_ids + [rollout_ids[i] for i in parents]
    train_reward = np.concatenate([reward, np.ones(b, dtype=np.float32)])
    train_reward_mask = np.concatenate([reward_mask, np.zeros(b, dtype=bool)])
    write_atomic(_table("train_set", {
        "example_id": pa.array(rollout_ids + branch_ids), "kind": pa.array(["rollout"] * n + ["branch"] * b),
        "rollout_id": pa.array(train_rollouts), "round": pa.array(np.full(t, k, dtype=np.int32)),
        "policy_version": pa.array(np.full(t, k - 1, dtype=np.int32)), "problem_id": pa.array(problem_ids + [problem_ids[i] for i in parents]),
        "context_token_ids": _lists(t, PROMPT_TOKENS, rng.integers(0, 30, t * PROMPT_TOKENS, dtype=np.int32)),
        "token_ids": _lists(t, TOKENS, np.concatenate([rng.integers(0, 30, n * TOKENS, dtype=np.int32), branch_tokens])),
        "logprobs": _lists(t, TOKENS, -rng.random(t * TOKENS, dtype=np.float32)), "advantages": _lists(t, TOKENS, adv),
        "loss_weights": _lists(t, TOKENS, weights), "reward": pa.array(train_reward, mask=train_reward_mask),
        "sft": pa.array((train_reward == 1.0) & ~train_reward_mask),
        **advantage_summaries(adv.reshape(t, TOKENS), weights.reshape(t, TOKENS)),
    }), dataset_path(root, "train_set", k))

    e = 200
    write_atomic(_table("eval", {
        "round": pa.array(np.full(e, k, dtype=np.int32)), "policy_version": pa.array(np.full(e, k, dtype=np.int32)),
        "problem_id": pa.array([f"heldout-{i:06d}" for i in range(e)]), "prompt": pa.array(["Q:1,+2\n"] * e),
        "answer": pa.array(["3"] * e), "completion": pa.array(["1+2=3\nA:3\n"] * e),
        "reward": pa.array((rng.random(e) < accuracy + 0.05).astype(np.float32)), "true_first_error_step": pa.array(np.full(e, None), pa.int32()),
    }), dataset_path(root, "eval", k))

    a = 2000 * k  # the archive grows by 2,000 hard prefixes a round; some are solved later
    origin = (np.arange(a) // 2000 + 1).astype(np.int32)
    solved_round = origin + rng.integers(1, 20, a).astype(np.int32)
    solved = solved_round <= k
    archive_ids = [f"r{o}-train-{i:07d}-s0" for o, i in zip(origin, np.arange(a) % 2000)]
    write_atomic(_table("archive", {
        "archive_id": pa.array(archive_ids), "round": pa.array(np.full(a, k, dtype=np.int32)),
        "origin_round": pa.array(origin), "problem_id": pa.array([f"train-{i:07d}" for i in range(a)]),
        "failure_id": pa.array(archive_ids), "prompt": pa.array(["Q:1,+2\n"] * a), "answer": pa.array(["3"] * a),
        "context_token_ids": _lists(a, PROMPT_TOKENS, rng.integers(0, 30, a * PROMPT_TOKENS, dtype=np.int32)),
        "archived_prefix_token_count": pa.array(np.full(a, 2, dtype=np.int32)),
        "prefix_steps": pa.array(rng.integers(1, STEPS, a).astype(np.int32)), "reason": pa.array(["uncorrected"] * a),
        "status": pa.array(np.where(solved, "solved", "open")), "replays": pa.array(rng.integers(0, 5, a).astype(np.int32)),
        "solved_round": pa.array(solved_round, mask=~solved), "true_first_error_step": pa.array(rng.integers(1, STEPS + 1, a).astype(np.int32)),
    }), dataset_path(root, "archive", k))

    metrics = root / "metrics" / "optimize" / f"round={k}.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps({"round": k, "logprob_mismatch": float(rng.random() * 1e-3), "logprob_mismatch_max": float(rng.random() * 1e-2)}))
    return {"rollouts": n, "failures": f, "corrections": f, "branches": b, "train_set": t, "train_tokens": t * TOKENS, "eval": e, "archive": a}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--rollouts", type=int, default=200_000, help="rollouts per round")
    parser.add_argument("--keep", type=Path, help="generate into this folder (reused if it holds the data) instead of a temporary one")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each kind of summary")
    parser.add_argument("--token-lists", action="store_true",
                        help="also time the audit's path for train sets without summary columns (every token list read) and check it gives the same figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlint-bench-audit-") as tmp:
        root = args.keep or Path(tmp)
        marker = root / "bench.json"
        if marker.is_file() and json.loads(marker.read_text()).get("args") == [args.rounds, args.rollouts, SCHEMA_VERSION]:
            totals = json.loads(marker.read_text())["rows"]
            print(f"reusing {root}")
        else:
            shutil.rmtree(root / "data", ignore_errors=True)
            shutil.rmtree(root / "audit", ignore_errors=True)
            started, totals = time.monotonic(), {}
            for k in range(1, args.rounds + 1):
                for name, count in make_round(root, k, args.rollouts, np.random.default_rng(k)).items():
                    totals[name] = totals.get(name, 0) + count
            print(f"generated {args.rounds} rounds in {time.monotonic() - started:.1f} s into {root}")
            marker.write_text(json.dumps({"args": [args.rounds, args.rollouts, SCHEMA_VERSION], "rows": totals}))
        size = sum(p.stat().st_size for p in (root / "data").rglob("*.parquet"))
        print("rows: " + ", ".join(f"{name} {count:,}" for name, count in totals.items()) + f"; Parquet {size / 2**30:.2f} GiB")
        cache = root / "audit" / "cache"
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))

        def cli(label: str, *extra: str) -> subprocess.CompletedProcess:
            before, started = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)), time.monotonic()
            done = subprocess.run([sys.executable, "-m", "rlint.cli", "audit", "--root", str(root), *extra], capture_output=True, text=True, env=env)
            wall, cpu = time.monotonic() - started, _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - before
            if done.returncode != 0:
                sys.exit(f"rlint audit failed: {done.stderr.strip()}")
            print(f"{label:<8} `rlint audit {' '.join(extra)}`: {wall:6.2f} s wall, {cpu:6.2f} s CPU (user+sys); {load()}", flush=True)
            return done

        print("each run in a fresh process, imports included")
        for _ in range(args.repeat):
            shutil.rmtree(cache, ignore_errors=True)
            cli("cold")  # the first audit of a workspace: no cache, every round read (and the cache written)
        for _ in range(args.repeat):
            cli("cold", "--no-cache")  # nothing cached, nothing written
        for _ in range(args.repeat):
            done = cli("warm")  # every round's advantage moments from the cache
        cli("warm", "--plots", str(root / "audit"), "--html", str(root / "audit" / "report.html"))
        print("\n".join(done.stdout.splitlines()[:12]))

        if args.token_lists:
            from dataclasses import replace

            from polars.testing import assert_frame_equal

            from rlint.audit.sources import workspace_inputs
            from rlint.audit.summary import audit

            fast = audit(workspace_inputs(root))
            before, started = _cpu(resource.getrusage(resource.RUSAGE_SELF)), time.monotonic()
            slow = audit(replace(workspace_inputs(root), advantage_moments=None))  # None: from the token lists
            wall, cpu = time.monotonic() - started, _cpu(resource.getrusage(resource.RUSAGE_SELF)) - before
            print(f"token lists (schema v2 path, in-process, every advantage and loss weight read): {wall:.2f} s wall, {cpu:.2f} s CPU; {load()}")
            assert_frame_equal(fast.advantages, slow.advantages, rel_tol=1e-9, abs_tol=1e-9)
            print("the per-row summary columns and the token lists give the same advantage statistics (rel. tol. 1e-9)")


if __name__ == "__main__":
    main()
