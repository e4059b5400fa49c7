"""bootstrap: the base policy (round 0).

Embedded default: a character-level tokenizer and a tiny Llama trained from scratch on worked
solutions of the embedded task. With ``bootstrap.model_path`` set, a local Hugging Face model
directory is checked and copied instead. Either way the result is ``checkpoints/round=0`` and
its held-out accuracy (greedy, on the engine ``sampling.engine`` names, with its standard error and sound accuracy) is written to
``metrics/evaluate/round=0.json``. For a task with a step checker, the base diagnostics
(rlint/base_diagnostics.py: sampled accuracy, groups without a right sample, right answers through
a wrong step, where first errors fall) are measured on ``bootstrap.diagnostic_prompts`` held-out
problems x ``rollout.samples_per_prompt`` samples at ``sampling.temperature``, logged and written
under ``base_diagnostics`` in the same file.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

from rlint.config import ConfigError, Params, round_seed
from rlint.engine import load_engine
from rlint.base_diagnostics import base_diagnostics, diagnostics_table, sample_rows
from rlint.evaluation import heldout_line, heldout_metrics, score_policy
from rlint.policy import build_char_tokenizer, build_tiny_llama, check_checkpoint, save_policy
from rlint.sft import train_sft
from rlint.stages.common import atomic_directory, checkpoint_path, metrics_path, seed_everything, write_json_atomic
from rlint.tasks import load_task

log = logging.getLogger(__name__)


def embedded_policy(params: Params, task, seed: int):
    """The untrained embedded model, its tokenizer and the ``(context, target)`` token lists it learns from.

    Every train problem gives its worked solution (context: the prompt). The first
    ``faithful_share`` of them also give a faithful continuation (context: the prompt and the
    solution up to an injected wrong line; target: the rest, computed from the wrong value),
    so the loss never falls on a wrong line. The first ``repair_share`` of them also give a
    repair lesson (context: the prompt, a wrong attempt and the repair marker; target: the
    reference solution), appended last and drawn from their own generator, so with
    ``repair_share: 0`` the examples, and so the trained model, are exactly those without it.
    Only train problems are used: the held-out split stays clean.
    """
    cfg = params.bootstrap
    tokenizer = build_char_tokenizer()
    model = build_tiny_llama(len(tokenizer), tokenizer, cfg.hidden_size, cfg.intermediate_size, cfg.layers, cfg.heads, cfg.max_length, seed)
    problems = task.problems("train", 0, cfg.train_problems)

    def example(context: str, target: str) -> tuple[list[int], list[int]]:
        return tokenizer.encode(context, add_special_tokens=False), tokenizer.encode(target, add_special_tokens=False) + [tokenizer.eos_token_id]

    examples = [example(p.prompt, task.solution(p)) for p in problems]
    rng = random.Random(seed)
    for p in problems[: round(cfg.faithful_share * len(problems))]:
        wrong_prefix, rest = task.faithful_example(p, rng)
        examples.append(example(p.prompt + wrong_prefix, rest))
    repair_rng = random.Random(f"{seed}/repair")
    for p in problems[: round(cfg.repair_share * len(problems))]:
        if (lesson := task.repair_example(p, repair_rng)) is not None:
            examples.append(example(*lesson))
    return model, tokenizer, examples


def run(params: Params, root: Path) -> dict:
    cfg = params.bootstrap
    task = load_task(params.task, params.limits)
    seed = round_seed(params, 0, "bootstrap")
    seed_everything(seed)
    target = checkpoint_path(root, 0)
    if cfg.model_path:
        source = check_checkpoint(cfg.model_path)  # files only: the engine below loads the copy (rlint's CLI checked the architecture)
        with atomic_directory(target) as tmp:
            for item in sorted(source.iterdir()):
                if item.is_file() and item.suffix not in (".bin", ".pt", ".pth", ".pkl"):
                    shutil.copy2(item, tmp / item.name)
        losses = []
    else:
        if task.name != "arithmetic":
            raise ConfigError("params.yaml: bootstrap.model_path is required for task.name 'dataset' (the embedded model only knows the arithmetic task)")
        model, tokenizer, examples = embedded_policy(params, task, seed)
        log.info("bootstrap: %d parameters, %d worked solutions", sum(p.numel() for p in model.parameters()), len(examples))
        losses = train_sft(model, examples, tokenizer.pad_token_id, cfg.steps, cfg.batch_size, cfg.lr, seed)
        with atomic_directory(target) as tmp:
            save_policy(model, tokenizer, tmp, {"origin": "bootstrap", "steps": cfg.steps, "seed": seed})
        del model  # the configured engine (sampling.engine) loads the written checkpoint, as the evaluate stage does
    engine = load_engine(str(target), params.sampling)
    rows = score_policy(engine, task, task.problems("heldout", 0, cfg.eval_problems), params.sampling.max_new_tokens, 0.0, seed)
    metrics = {"round": 0, **heldout_metrics(rows, task.has_step_checker), "final_sft_loss": round(losses[-1], 4) if losses else None,
               "engine": engine.name}
    log.info("bootstrap: %s (%s)", heldout_line(metrics), engine.name)
    if cfg.diagnostic_prompts and task.has_step_checker:
        samples = sample_rows(engine, task, task.problems("heldout", 0, cfg.diagnostic_prompts), params.rollout.samples_per_prompt,
                              params.sampling.temperature, params.sampling.top_p, params.sampling.max_new_tokens, round_seed(params, 0, "base_diagnostics"))
        metrics["base_diagnostics"] = {"temperature": params.sampling.temperature, **base_diagnostics(samples)}
        log.info("bootstrap: %s", diagnostics_table(metrics["base_diagnostics"]))
    write_json_atomic(metrics_path(root, "evaluate", 0), metrics)
    return metrics
