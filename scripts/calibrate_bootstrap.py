"""Held-out accuracy of the embedded base policy along its supervised training.

Usage: python scripts/calibrate_bootstrap.py [params.yaml] [--every 100]
Prints one line per evaluation: step, train loss, greedy held-out accuracy. Used to choose
bootstrap.steps so the base policy is partly competent (DESIGN: 15%-60%).
"""

from __future__ import annotations

import argparse
import time

from rlint.config import load_params, round_seed
from rlint.engine.hf import TransformersEngine
from rlint.evaluation import accuracy, score_policy
from rlint.sft import train_sft
from rlint.stages.bootstrap import embedded_policy
from rlint.stages.common import seed_everything
from rlint.tasks import load_task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("params", nargs="?", default="params.yaml")
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()
    params = load_params(args.params)
    cfg, task = params.bootstrap, load_task(params.task)
    seed = round_seed(params, 0, "bootstrap")
    seed_everything(seed)
    model, tokenizer, examples = embedded_policy(params, task, seed)
    heldout = task.problems("heldout", 0, cfg.eval_problems)
    started = time.monotonic()

    def on_step(step, model):
        if step % args.every == 0 or step == cfg.steps:
            rows = score_policy(TransformersEngine(model, tokenizer), task, heldout, params.sampling.max_new_tokens, 0.0, seed)
            print(f"step {step:5d}  heldout_accuracy {accuracy(rows):.3f}  elapsed {time.monotonic() - started:.0f}s", flush=True)
            model.train()

    train_sft(model, examples, tokenizer.pad_token_id, cfg.steps, cfg.batch_size, cfg.lr, seed, on_step=on_step)


if __name__ == "__main__":
    main()
