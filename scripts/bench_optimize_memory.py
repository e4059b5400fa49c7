"""Memory and speed of the optimize stage on a model of >= 100 M parameters, on the CPU.

A randomly initialised Llama-architecture model (default: 768 wide, 12 layers, a 32,000-token
vocabulary: about 110 M parameters) is trained for a few optimizer steps on synthetic train-set
rows through the optimize stage's trainer (rlint/trainer/loop.py: ``make_accelerator``, ``prepare_model``,
``train``: measure pass, micro-batches, AdamW, clipping), then the script prints the exact
parameter count, the peak resident memory of the process and the seconds per optimizer step.

    python scripts/bench_optimize_memory.py                          # defaults
    python scripts/bench_optimize_memory.py --gradient-checkpointing --micro-batch-size 8
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from types import SimpleNamespace

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rlint.config import OptimizeConfig
from rlint.trainer.loop import make_accelerator, prepare_model, train


def synthetic_rows(n: int, context: int, tokens: int, vocab: int, seed: int) -> list[dict]:
    """Train-set rows with random tokens, sampler log-probs near the model's (uniform), advantages +-1."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        ids = torch.randint(4, vocab, (context + tokens,), generator=g).tolist()
        rows.append({"context_token_ids": ids[:context], "token_ids": ids[context:], "logprobs": [-float(torch.log(torch.tensor(vocab)))] * tokens,
                     "advantages": [1.0 if i % 2 else -1.0] * tokens, "loss_weights": [1.0] * tokens, "sft": i % 4 == 0})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--intermediate", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--context", type=int, default=64, help="prompt tokens per row (no loss)")
    parser.add_argument("--tokens", type=int, default=192, help="trained tokens per row")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps")
    parser.add_argument("--minibatch-size", type=int, default=8)
    parser.add_argument("--micro-batch-size", type=int, default=4)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--kl-coef", type=float, default=0.0)
    parser.add_argument("--sft-weight", type=float, default=0.1)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate, num_hidden_layers=args.layers,
                         num_attention_heads=args.heads, num_key_value_heads=args.heads, max_position_embeddings=args.context + args.tokens,
                         tie_word_embeddings=True, pad_token_id=0)
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    cfg = OptimizeConfig(epochs=1, minibatch_size=args.minibatch_size, micro_batch_size=args.micro_batch_size, lr=1e-5,
                         gradient_checkpointing=args.gradient_checkpointing, kl_coef=args.kl_coef, sft_weight=args.sft_weight)
    accelerator = make_accelerator(cfg)
    model = prepare_model(model, cfg, accelerator)
    rows = synthetic_rows(args.steps * args.minibatch_size, args.context, args.tokens, args.vocab, seed=0)
    started = time.perf_counter()
    # round 1 semantics: the KL reference is the policy itself before its first update (no second copy)
    metrics, seconds = train(model, SimpleNamespace(pad_token_id=0), rows, cfg, accelerator, seed=0, temperature=1.0, ref_is_policy=True)
    total = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"model: Llama, {n_params:,} parameters ({args.layers} layers, hidden {args.hidden}, vocab {args.vocab}), fp32, AdamW")
    print(f"work: {args.steps} optimizer steps x {args.minibatch_size} rows of {args.context}+{args.tokens} tokens, "
          f"micro-batches of {args.micro_batch_size}, gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, "
          f"kl_coef {args.kl_coef}, sft_weight {args.sft_weight}")
    print(f"device: {accelerator.device}, torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    print(f"seconds per optimizer step: {sum(seconds) / len(seconds):.1f} (each: {', '.join(f'{s:.1f}' for s in seconds)}); "
          f"whole train() incl. the measure pass: {total:.1f} s")
    print(f"peak RSS: {peak_kib / 1024**2:.2f} GiB")
    print(f"metrics: loss {metrics['loss']}, grad_norm {metrics['grad_norm']}, entropy {metrics['entropy']}, tokens {metrics['tokens']}")


if __name__ == "__main__":
    main()
