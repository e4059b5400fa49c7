"""optimize: a policy-gradient update over the round's train set (the trainer: rlint/trainer/).

Reads ``data/train_set/round=<k>`` and the policy of round k-1 (and, for the KL penalty, the base
policy ``checkpoints/round=0``), trains, and writes ``checkpoints/round=<k>`` and
``metrics/optimize/round=<k>.json``, both atomically. The same command runs on one process or
under ``accelerate launch`` (rlint/launch.py, docs/training.md).

A round with no learning signal (:func:`rlint.trainer.plan.learning_signal`: every advantage 0,
no supervised or KL term) trains nothing: the stage says so in one line and carries the previous
checkpoint over (with ``carry_optimizer_state`` this also skips the momentum-only steps AdamW
would take on zero gradients).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType, set_seed

from rlint.config import ConfigError, OptimizeConfig, Params, round_seed
from rlint.data import read_rows
from rlint.optimizer_state import OptimizerStateError
from rlint.policy import load_policy
from rlint.stages.common import checkpoint_path, metrics_path, write_json_atomic
from rlint.trainer.checkpoint import carry_over_checkpoint, save_checkpoint
from rlint.trainer.loop import METRIC_KEYS, make_accelerator, make_optimizer, prepare_model, train
from rlint.trainer.plan import learning_signal

log = logging.getLogger(__name__)


def run(params: Params, round_id: int, root: Path) -> dict:
    cfg = params.optimize
    seed = round_seed(params, round_id, "optimize")
    set_seed(seed)
    rows = [r for r in read_rows(root, "train_set", round_id) if r["token_ids"] and any(w > 0 for w in r["loss_weights"])]
    extra = {"origin": "optimize", "round": round_id, "seed": seed, "mode": params.mode}
    signal = learning_signal(rows, cfg)
    if rows and not signal["signal"]:
        return _no_signal(params, round_id, root, rows, signal, extra)
    accelerator = make_accelerator(cfg)
    model, tokenizer = load_policy(checkpoint_path(root, round_id - 1))
    model = prepare_model(model, cfg, accelerator)
    # the KL reference is the base policy; in round 1 that is the policy being trained, measured before its first update
    ref_is_policy = round_id - 1 == 0
    ref_model = None
    if cfg.kl_coef > 0 and not ref_is_policy:
        ref_model = load_policy(checkpoint_path(root, 0))[0].to(accelerator.device).eval()
    started = time.monotonic()
    previous = checkpoint_path(root, round_id - 1)
    optimizer, carried = _carried_optimizer(model, cfg, accelerator, previous, round_id) if cfg.carry_optimizer_state else (None, False)
    if rows:
        metrics, seconds = train(model, tokenizer, rows, cfg, accelerator, seed, params.sampling.temperature, ref_model, ref_is_policy, optimizer)
    else:
        metrics, seconds = dict.fromkeys(METRIC_KEYS, 0), []
        log.warning("optimize round %d: nothing to train on; the checkpoint is the previous policy", round_id)
    del ref_model
    carry = cfg.carry_optimizer_state
    save_checkpoint(accelerator, model, tokenizer, checkpoint_path(root, round_id), extra,
                    optimizer=optimizer if carry and rows else None, optimizer_from=previous if carry and not rows else None)
    metrics = {"round": round_id, **metrics, **({"optimizer_state_carried": carried} if carry else {})}
    if accelerator.is_main_process:
        write_json_atomic(metrics_path(root, "optimize", round_id), metrics)
    log.info("optimize round %d: %s (%.1fs, %.2fs per step, %d processes)", round_id, metrics, time.monotonic() - started,
             sum(seconds) / max(len(seconds), 1), accelerator.num_processes)
    return metrics


def _carried_optimizer(model, cfg: OptimizeConfig, accelerator: Accelerator, previous: Path, round_id: int) -> tuple:
    """AdamW with the state stored in checkpoint ``previous`` (fresh when it holds none), and whether one was loaded;
    a state that does not fit the model, or FSDP's sharded state, is a config error."""
    if accelerator.distributed_type == DistributedType.FSDP:
        raise ConfigError("params.yaml: optimize.carry_optimizer_state is not supported under FSDP (its optimizer state is sharded)")
    try:
        optimizer, carried = make_optimizer(model, cfg, previous)
    except OptimizerStateError as err:
        raise ConfigError(str(err)) from None
    log.info("optimize round %d: AdamW state %s", round_id, f"carried from {previous}" if carried else "fresh (none stored in the previous checkpoint)")
    return optimizer, carried


def _no_signal(params: Params, round_id: int, root: Path, rows: list[dict], signal: dict, extra: dict) -> dict:
    """A round with nothing to learn: say so in one line, carry the policy over, spend no optimizer time."""
    repair = getattr(params.mine, "strategy", None) == "repair"
    hint = "; failures in all-wrong groups can only give signal through repairs (mine.strategy: repair)" if signal["all_wrong"] and not repair else ""
    log.warning("optimize round %d: no learning signal: all %d groups uniform (%d all right, %d all wrong), %d mined or corrected rows "
                "with nonzero credit, no supervised or KL term; the policy of round %d is carried over, no optimizer steps%s",
                round_id, signal["groups"], signal["all_right"], signal["all_wrong"], signal["other_rows"], round_id - 1, hint)
    if not PartialState().is_main_process:
        return {"round": round_id}
    carry_over_checkpoint(checkpoint_path(root, round_id - 1), checkpoint_path(root, round_id), extra, params.optimize.carry_optimizer_state)
    metrics = {"round": round_id, **dict.fromkeys(METRIC_KEYS, 0), "examples": len(rows), "no_signal": True,
               "uniform_groups": signal["groups"], "all_wrong_groups": signal["all_wrong"]}
    write_json_atomic(metrics_path(root, "optimize", round_id), metrics)
    return metrics
