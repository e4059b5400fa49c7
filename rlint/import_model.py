"""``rlint import-model PATH.gguf OUT/``: a GGUF checkpoint as a safetensors model directory rlint can train.

transformers reads a GGUF file (dequantizing its tensors to float with the ``gguf`` package) but
refuses to save the result ("The model is quantized with QuantizationMethod.GGUF and is not
serializable"). This command loads it, rebuilds the same architecture from its config without the
GGUF quantization record, copies the float weights in, and writes the model, its tokenizer (with
the chat template the file carries) and its generation config to ``OUT`` in one rename.

Before anything loads, :func:`gguf_summary` reads the file's header and :func:`check_convertible`
refuses an architecture transformers cannot read from GGUF or a tensor type ``gguf`` cannot
dequantize, with one line naming the file and the type. ``OUT`` must not exist or be empty.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

FLOAT_TYPES = ("F32", "F16", "BF16")


class ImportModelError(ValueError):
    """The GGUF file cannot be converted; the message names the file and the reason."""


def gguf_summary(path: Path) -> tuple[str, Counter]:
    """``(architecture, tensor type name -> count)`` from a GGUF file's header; ImportModelError when it is not one."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise ImportModelError("the gguf package is not installed (`make install` installs it)") from None
    if not path.is_file():
        raise ImportModelError(f"{path}: no such file")
    try:
        reader = GGUFReader(path)
        field = reader.fields["general.architecture"]
        architecture = bytes(field.parts[field.data[0]]).decode()
    except (KeyError, ValueError, IndexError, OSError) as err:
        raise ImportModelError(f"{path}: not a readable GGUF file ({type(err).__name__}: {str(err)[:120]})") from None
    return architecture, Counter(tensor.tensor_type.name for tensor in reader.tensors)


def check_convertible(path: Path, architecture: str, types: Counter, supported_architectures, dequantizable: set[str]) -> None:
    """Refuse what the conversion cannot do, before loading anything.

    >>> check_convertible(Path("m.gguf"), "llama", Counter({"Q4_1": 2, "F32": 1}), ["llama"], {"Q4_1"})
    >>> check_convertible(Path("m.gguf"), "llama", Counter({"Q8_1": 1}), ["llama"], {"Q4_1"})
    Traceback (most recent call last):
    rlint.import_model.ImportModelError: m.gguf: 1 tensor(s) of type Q8_1, which the gguf package cannot dequantize (it can: F32, F16, BF16, Q4_1)
    """
    if architecture not in supported_architectures:
        raise ImportModelError(f"{path}: architecture {architecture!r}: transformers cannot read it from GGUF "
                               f"(it reads: {', '.join(sorted(supported_architectures))})")
    known = set(FLOAT_TYPES) | set(dequantizable)
    for name, count in sorted(types.items()):
        if name not in known:
            raise ImportModelError(f"{path}: {count} tensor(s) of type {name}, which the gguf package cannot dequantize "
                                   f"(it can: {', '.join([*FLOAT_TYPES, *sorted(dequantizable)])})")


def _supported() -> tuple[list[str], set[str]]:
    from gguf.quants import _type_traits
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return list(GGUF_SUPPORTED_ARCHITECTURES), {qtype.name for qtype in _type_traits}


def import_gguf(path: Path, out: Path) -> dict:
    """Convert ``path`` (a .gguf file) into the model directory ``out``; returns what was written."""
    path, out = Path(path), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImportModelError(f"{out}: exists and is not an empty folder (nothing is overwritten)")
    architecture, types = gguf_summary(path)
    check_convertible(path, architecture, types, *_supported())

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    from rlint.atomic import atomic_directory
    from rlint.checkpoints import CheckpointError, verify_checkpoint

    try:
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as err:  # noqa: BLE001 - whatever transformers raises on this file (KeyError on a missing tokenizer field...) is bad input
        raise ImportModelError(f"{path}: transformers cannot load it: {type(err).__name__}: {' '.join(str(err).split())[:200]}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the dequantized weights are plain floats: nothing of GGUF stays
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and getattr(config, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise ImportModelError(f"{path}: the rebuilt model does not match the file (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if loaded.generation_config is not None:
            loaded.generation_config.save_pretrained(tmp)
        try:  # what every stage checks of a model directory (files, tokenizer ids within the vocabulary, architecture)
            verify_checkpoint(tmp)
        except CheckpointError as err:
            raise ImportModelError(f"{path}: converted, but the result is no usable model directory: {err}") from None
    return {"architecture": architecture, "tensor_types": dict(types), "parameters": sum(p.numel() for p in model.parameters()),
            "chat_template": bool(getattr(tokenizer, "chat_template", None)), "out": str(out)}


def main(gguf_file: str, out: str) -> int:
    """The command: convert and print one line; ImportModelError is the caller's (rlint/cli.py: exit 2)."""
    summary = import_gguf(Path(gguf_file), Path(out))
    types = ", ".join(f"{n} {t}" for t, n in sorted(summary["tensor_types"].items()))
    print(f"imported {gguf_file} -> {summary['out']}: {summary['architecture']}, {summary['parameters']:,} parameters "
          f"(tensors: {types}), float32 safetensors, chat template: {'yes' if summary['chat_template'] else 'no'}")
    return 0
