"""Policy checkpoints: the embedded tokenizer and model, loading and saving.

A checkpoint is an ordinary Hugging Face model directory: ``config.json``,
``model.safetensors`` and ``tokenizer.json`` (+ ``tokenizer_config.json``), so transformers
and vLLM load it as they load any causal LM. Weights are read from safetensors only; a
directory that has only pickled weights is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from rlint.checkpoints import CheckpointError, check_checkpoint  # noqa: F401 - re-exported (defined without torch)
from rlint.tasks.arithmetic import ALPHABET

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def build_char_tokenizer(alphabet: str = ALPHABET) -> PreTrainedTokenizerFast:
    """A character-level tokenizer: one token per character, special tokens first.

    Built as a BPE model with no merges, so ``tokenizer.json`` is a standard file that
    transformers and vLLM load without custom code.
    """
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + sorted(set(alphabet)))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny_llama(vocab_size: int, tokenizer, hidden_size: int, intermediate_size: int, layers: int, heads: int, max_length: int, seed: int) -> LlamaForCausalLM:
    """A freshly initialised Llama-architecture model; the same seed gives the same weights."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def load_policy(path: str | Path, dtype: torch.dtype = torch.float32):
    """Load ``(model, tokenizer)`` from a checkpoint directory, safetensors only."""
    path = check_checkpoint(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True)
    return model, tokenizer


def save_policy(model, tokenizer, path: str | Path, extra: dict | None = None) -> None:
    """Write a checkpoint directory (safetensors) plus ``rlint.json`` describing its origin."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    (path / "rlint.json").write_text(json.dumps(extra or {}, indent=2, sort_keys=True) + "\n")
