"""Peak memory of the transformers engine: every step's scores kept (the old way) against the step recorder.

Usage: python scripts/bench_hf_memory.py [--vocab 49152] [--sequences 16] [--tokens 128] [--out bench/hf_memory]

A random-weight Llama with a real instruct model's vocabulary size (SmolLM2: 49,152) samples
``--sequences`` sequences of exactly ``--tokens`` new tokens (no eos), once with
``output_scores=True`` (what rlint/engine/hf.py did: (B, T, V) scores) and once through
:class:`rlint.engine.hf.TransformersEngine`; each in a fresh process, whose peak resident memory
is read from ``getrusage``. Prints a table and writes ``summary.json`` (``peak_mb_output_scores``,
``peak_mb_recorder``, ``scores_mb_expected``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import resource, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
sys.path.insert(0, sys.argv[5])
mode, vocab, n, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
torch.set_num_threads(1)
model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                     num_key_value_heads=2, max_position_embeddings=tokens + 16, bos_token_id=1, eos_token_id=2, pad_token_id=0)).eval()
prompt = torch.randint(3, vocab, (n, 8))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "output_scores":
    out = model.generate(input_ids=prompt, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=True, top_k=None, pad_token_id=0,
                         output_scores=True, return_dict_in_generate=True)
    new = out.sequences[:, 8:]
    lp = torch.log_softmax(torch.stack(out.scores, 1).float(), -1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
else:
    from transformers import LogitsProcessorList, MinNewTokensLengthLogitsProcessor
    from rlint.engine.hf import SampledLogprobs
    rec = SampledLogprobs()
    out = model.generate(input_ids=prompt, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=True, top_k=None, pad_token_id=0,
                         logits_processor=LogitsProcessorList([rec]), return_dict_in_generate=True)
    lp = rec.finish(out.sequences[:, 8:])
assert lp.shape == (n, tokens)
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--sequences", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--out", default="bench/hf_memory")
    args = parser.parse_args(argv)
    peaks = {}
    for mode in ("output_scores", "recorder"):
        done = subprocess.run([sys.executable, "-c", CHILD, mode, str(args.vocab), str(args.sequences), str(args.tokens), str(REPO)],
                              capture_output=True, text=True, check=True)
        base_kb, peak_kb = (int(v) for v in done.stdout.split()[-2:])
        peaks[mode] = {"peak_mb": peak_kb / 1024, "growth_mb": (peak_kb - base_kb) / 1024}
    expected = args.sequences * args.tokens * args.vocab * 4 / 2**20
    summary = {"vocab": args.vocab, "sequences": args.sequences, "tokens": args.tokens, "scores_mb_expected": expected,
               "peak_mb_output_scores": peaks["output_scores"]["peak_mb"], "peak_mb_recorder": peaks["recorder"]["peak_mb"],
               "growth_mb_output_scores": peaks["output_scores"]["growth_mb"], "growth_mb_recorder": peaks["recorder"]["growth_mb"]}
    print(f"{'engine path':<16}{'peak MB':>10}{'growth during generate MB':>28}")
    for mode in ("output_scores", "recorder"):
        print(f"{mode:<16}{peaks[mode]['peak_mb']:>10.0f}{peaks[mode]['growth_mb']:>28.0f}")
    print(f"(B, T, V) float32 scores alone: {expected:.0f} MB")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
