"""A repair-taught embedded base policy: held-out accuracy and repair success along its supervised training.

Usage: python scripts/calibrate_repair.py [--params params.yaml] [--repair-share 0.5] [--faithful-share F] [--at 300,500,700]
       [--problems 200] [--samples 4] [--out /tmp/rlint-repair-base] [--json bench/repair_bootstrap.json]

Trains the embedded model as the bootstrap stage does, with ``bootstrap.repair_share`` set, and at
each step count of ``--at`` (the warm-up-then-constant schedule makes the step-N model that of a
bootstrap with N steps) prints and records:
- ``heldout_accuracy``: greedy, on ``--problems`` held-out problems (as the bootstrap stage scores it);
- the policy's own failures: ``--samples`` completions per held-out problem at the sampling
  temperature; every failure not cut by the length limit gets ``mine.repair_samples`` repair
  attempts through the mine stage's own code (rlint/identify/repair.py, the same gates);
  ``repair_success`` is the share of them with a kept repair, ``loc_acc`` the share of located
  first errors equal to the ground truth, ``verified_edit_sizes`` the quartiles of the edit size of
  every verified attempt (what ``mine.repair_max_edit`` should admit);
- ``base_diagnostics``: the bootstrap stage's diagnostics (rlint/base_diagnostics.py) on
  ``bootstrap.diagnostic_prompts`` held-out problems, among them the share of right answers through a wrong step.
``--faithful-share`` overrides ``bootstrap.faithful_share`` (default: the params file's).
Each step-N model is saved under ``--out/step=N`` (a scratch directory, never checkpoints/).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from rlint.atomic import write_json_atomic
from rlint.base_diagnostics import base_diagnostics, sample_rows
from rlint.config import load_params, round_seed, with_changes
from rlint.engine import SamplingRequest
from rlint.engine.hf import TransformersEngine
from rlint.evaluation import accuracy, score_policy
from rlint.policy import save_policy
from rlint.sft import train_sft
from rlint.stages.bootstrap import embedded_policy
from rlint.stages.common import seed_everything
from rlint.identify.repair import identify_by_repair, repair_metrics
from rlint.steps import step_ends, token_texts
from rlint.tasks import load_task


def own_failures(engine, task, problems, samples: int, max_new_tokens: int, temperature: float, seed: int) -> list[dict]:
    """Rollout-like rows of the policy's failed samples on ``problems``."""
    request = SamplingRequest(prompts=[engine.encode(p.prompt) for p in problems], n=samples, temperature=temperature,
                              max_new_tokens=max_new_tokens, seed=seed)
    rows = []
    for problem, drawn in zip(problems, engine.generate(request, desc="rollout")):
        for j, sample in enumerate(drawn):
            completion = engine.decode(sample.token_ids)
            if task.reward(completion, problem.answer) == 1.0:
                continue
            rows.append({"rollout_id": f"{problem.problem_id}-s{j}", "problem_id": problem.problem_id, "prompt": problem.prompt,
                         "answer": problem.answer, "prompt_token_ids": engine.encode(problem.prompt), "token_ids": sample.token_ids,
                         "step_ends": step_ends(token_texts(engine.tokenizer, sample.token_ids), task.step_delimiter),
                         "finish_reason": sample.finish_reason, "archived_prefix_token_count": 0,
                         "true_first_error_step": task.first_error_step(problem, completion)})
    return rows


def measure(model, tokenizer, params, task, heldout, args, seed: int) -> dict:
    engine = TransformersEngine(model, tokenizer, batch_size=params.sampling.batch_size)
    greedy = score_policy(engine, task, heldout, params.sampling.max_new_tokens, 0.0, seed)
    failures = own_failures(engine, task, heldout, args.samples, params.sampling.max_new_tokens, params.sampling.temperature, seed)
    # every edit admitted, so each failure keeps its smallest verified edit; the gate is applied below
    loose = with_changes(params, mine=with_changes(params.mine, repair_max_edit=1.0))
    rows = identify_by_repair(failures, engine, task, loose, seed + 1, round_id=1).failures
    attempted = [r for r in rows if r["repair_attempts"]]
    edits = [r["edit_size"] for r in attempted if r["edit_size"] is not None and r["decided_by"] == "repair"]
    gated = params.mine.repair_max_edit
    located = [r for r in rows if r["first_error_step"] is not None and r["edit_size"] <= gated + 1e-9]
    truth = [r for r in located if r["true_first_error_step"] is not None]
    decided: dict[str, int] = {}
    for r in rows:
        decided[r["decided_by"]] = decided.get(r["decided_by"], 0) + 1
    return {
        "heldout_accuracy": round(accuracy(greedy), 4), "failures": len(rows), "repair_attempted": len(attempted),
        "repair_tokens": repair_metrics(rows)["repair_tokens"],
        # share of attempted failures whose smallest verified edit is at most t (t = mine.repair_max_edit candidates)
        "repair_success_at_max_edit": {str(t): round(sum(e <= t + 1e-9 for e in edits) / max(1, len(attempted)), 4) for t in (0.1, 0.2, 0.3, 0.5, 1.0)},
        "repair_success": round(len(located) / max(1, len(attempted)), 4),
        "located": len(located), "loc_acc": round(sum(r["first_error_step"] == r["true_first_error_step"] for r in truth) / len(truth), 4) if truth else None,
        "verified_attempt_share": round(sum(r["repair_verified"] for r in rows) / max(1, sum(r["repair_attempts"] for r in rows)), 4),
        "kept_edit_sizes": [round(float(q), 4) for q in np.quantile(edits, [0.25, 0.5, 0.75, 1.0])] if edits else None,
        "decided_by": decided,
        "base_diagnostics": base_diagnostics(sample_rows(engine, task, task.problems("heldout", 0, params.bootstrap.diagnostic_prompts),
                                                         params.rollout.samples_per_prompt, params.sampling.temperature, params.sampling.top_p,
                                                         params.sampling.max_new_tokens, seed + 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--repair-share", type=float, default=0.5)
    parser.add_argument("--faithful-share", type=float, default=None, help="bootstrap.faithful_share (default: the params file's)")
    parser.add_argument("--at", default="300,500,700")
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--out", default="/tmp/rlint-repair-base")
    parser.add_argument("--json", default="bench/repair_bootstrap.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    base = load_params(args.params)
    at = sorted(int(s) for s in args.at.split(","))
    faithful = base.bootstrap.faithful_share if args.faithful_share is None else args.faithful_share
    params = with_changes(base, bootstrap=with_changes(base.bootstrap, repair_share=args.repair_share, faithful_share=faithful, steps=at[-1]))
    cfg, task = params.bootstrap, load_task(params.task)
    seed = round_seed(params, 0, "bootstrap")
    seed_everything(seed)
    model, tokenizer, examples = embedded_policy(params, task, seed)
    heldout = task.problems("heldout", 0, args.problems)
    started, results = time.monotonic(), []

    def on_step(step, model):
        if step in at:
            save_policy(model, tokenizer, Path(args.out) / f"step={step}", {"origin": "calibrate_repair", "steps": step, "seed": seed,
                                                                            "repair_share": args.repair_share, "faithful_share": faithful})
            with torch.no_grad():
                result = {"steps": step, **measure(model, tokenizer, params, task, heldout, args, seed)}
            results.append(result)
            print(json.dumps(result), f"elapsed {time.monotonic() - started:.0f}s", flush=True)
            model.train()

    train_sft(model, examples, tokenizer.pad_token_id, cfg.steps, cfg.batch_size, cfg.lr, seed, on_step=on_step)
    write_json_atomic(Path(args.json), {"repair_share": args.repair_share, "faithful_share": faithful, "train_examples": len(examples), "heldout_problems": args.problems,
                                        "samples_per_problem": args.samples, "repair_samples": params.mine.repair_samples,
                                        "repair_max_edit": params.mine.repair_max_edit, "results": results})


if __name__ == "__main__":
    main()
