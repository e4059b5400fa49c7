"""Checking a model directory before any stage loads it: a bad one is bad input (exit code 2), not a crash.

:func:`check_checkpoint` checks that the files exist; :func:`verify_checkpoint` also
reads what can be read without loading weights: ``config.json`` and the tokenizer files parse,
transformers knows the architecture, and every ``*.safetensors`` header is well formed and
covers its file exactly (a truncated or foreign file is refused). Weights are only ever loaded
from safetensors (``use_safetensors=True`` in rlint/policy.py); pickled ``*.bin`` files are
never opened. Nothing here imports torch; transformers only for the architecture check.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from rlint.params_file import short


def checkpoint_path(root: str | Path, round_id: int) -> Path:
    """Policy after round ``round_id`` (round 0: the base policy from bootstrap)."""
    return Path(root) / "checkpoints" / f"round={round_id}"


class CheckpointError(ValueError):
    """A model directory is unusable; the message names the directory and what is missing."""


def check_checkpoint(path: str | Path) -> Path:
    """Refuse a model directory without config, safetensors weights or tokenizer."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: model directory not found")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: no config.json, not a Hugging Face model directory")
    if not any(path.glob("*.safetensors")):
        raise CheckpointError(f"{path}: no *.safetensors weights (pickled weights are not loaded)")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise CheckpointError(f"{path}: no tokenizer.json or tokenizer_config.json")
    return path

MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


# config.json fields that size the model: a string or a float there breaks model construction deep in transformers
SIZE_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "max_position_embeddings", "head_dim")


def _json_file(path: Path) -> dict:
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read: {err.strerror or type(err).__name__}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: not valid JSON: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError, or an integer beyond Python's digit limit
        raise CheckpointError(f"{path}: not valid JSON: {str(err).splitlines()[0][:120]}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def check_safetensors(path: Path) -> None:
    """A safetensors file: an 8-byte header length, a JSON header, then exactly the tensors' bytes."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path}: not a safetensors file (header length {length} for {size} bytes); truncated?")
        try:
            header = json.loads(f.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{path}: safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in DTYPE_BYTES:
            raise CheckpointError(f"{path}: tensor {name!r}: unknown dtype {info.get('dtype') if isinstance(info, dict) else info!r}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            raise CheckpointError(f"{path}: tensor {name!r}: bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and offsets[1] - offsets[0] == math.prod(shape) * DTYPE_BYTES[info["dtype"]]):
            raise CheckpointError(f"{path}: tensor {name!r}: data_offsets {offsets!r} do not fit shape {shape} of {info['dtype']}")
        spans.append(tuple(offsets))
    end = 0
    for start, stop in sorted(spans):  # the tensors tile the data exactly: no gap, no overlap
        if start != end:
            raise CheckpointError(f"{path}: tensor data is not contiguous at byte {start}")
        end = stop
    if end != size - 8 - length:
        raise CheckpointError(f"{path}: tensors need {end} bytes after the header, the file has {size - 8 - length}; truncated?")


def check_tokenizer(path: Path, vocab_size: int | None) -> None:
    """``tokenizer.json`` loads as a tokenizer, and its ids (added tokens included) fit the model's ``vocab_size``."""
    from tokenizers import Tokenizer

    try:
        vocab = Tokenizer.from_file(str(path)).get_vocab(with_added_tokens=True)
    except Exception as err:  # noqa: BLE001 - the Rust library raises plain Exception for a malformed file
        raise CheckpointError(f"{path}: not a tokenizer: {str(err).splitlines()[0][:150] if str(err) else type(err).__name__}") from None
    largest = max(vocab.values(), default=-1)
    if vocab_size is not None and largest >= vocab_size:
        token = next(t for t, i in vocab.items() if i == largest)
        raise CheckpointError(f"{path}: token {short(token, 20)} has id {largest}, beyond the model's vocabulary (config.json vocab_size={vocab_size})")


def parameter_count(path: str | Path) -> int | None:
    """Parameters in a model directory's safetensors files, from their headers (no tensor is read); None if unreadable."""
    total = 0
    files = sorted(Path(path).glob("*.safetensors"))
    try:
        for file in files:
            with file.open("rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(min(length, MAX_HEADER_BYTES)).decode("utf-8"))
            total += sum(math.prod(info["shape"]) for name, info in header.items() if name != "__metadata__")
    except (OSError, struct.error, ValueError, TypeError, KeyError, AttributeError):
        return None
    return total if files else None


def vocab_size(path: str | Path) -> int | None:
    """``vocab_size`` of a verified model directory's config.json (token ids must stay below it)."""
    return _json_file(Path(path) / "config.json").get("vocab_size")


def context_length(path: str | Path) -> int | None:
    """Positions the model at ``path`` was built for (config.json ``max_position_embeddings``), or None when unstated."""
    value = _json_file(Path(path) / "config.json").get("max_position_embeddings")
    return value if type(value) is int and value > 0 else None


def check_context(task, problems, contexts: list[list[int]], max_new_tokens: int, model_dir: Path, max_model_len: int | None = None) -> None:
    """Refuse a problem whose prompt plus ``sampling.max_new_tokens`` does not fit the model's context, before sampling.

    ``contexts[i]`` holds the token ids of ``problems[i]``'s prompt; the context is config.json's
    ``max_position_embeddings`` (and ``sampling.vllm.max_model_len`` when set).
    """
    from rlint.tasks.base import TaskInputError

    limits = [n for n in (context_length(model_dir), max_model_len) if n]
    if not limits:
        return
    limit = min(limits)
    where = getattr(task, "path", None) or f"task {task.name!r}"
    for problem, ids in zip(problems, contexts):
        if len(ids) + max_new_tokens > limit:
            raise TaskInputError(f"{where}: problem {problem.problem_id!r:.40}: its prompt of {len(ids)} tokens + sampling.max_new_tokens="
                                 f"{max_new_tokens} do not fit the model's context of {limit} tokens; shorten the question or lower "
                                 "sampling.max_new_tokens")


def check_dataset_context(task, split: str, params, model_dir: Path) -> None:
    """:func:`check_context` for every problem of a dataset split, tokenized with the model's ``tokenizer.json`` (no torch)."""
    if not (model_dir / "tokenizer.json").is_file() or not task.split_size(split):
        return
    from tokenizers import Tokenizer

    problems = task.problems(split, 0, task.split_size(split))
    encoded = Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode_batch([p.prompt for p in problems], add_special_tokens=False)
    check_context(task, problems, [e.ids for e in encoded], params.sampling.max_new_tokens, model_dir, params.sampling.vllm.max_model_len)


def verify_checkpoint(path: str | Path, architecture: bool = True) -> Path:
    """Refuse a model directory that cannot be loaded; the error names the file. Loads no weights.

    ``architecture=False`` skips the one check that imports transformers (its AutoConfig), so the
    rest runs in a fraction of a second, before the heavy imports.
    """
    path = check_checkpoint(path)
    config = _json_file(path / "config.json")
    if not isinstance(config.get("model_type"), str):
        raise CheckpointError(f"{path / 'config.json'}: no 'model_type'")
    for key in SIZE_FIELDS:
        value = config.get(key)
        if value is not None and (type(value) is not int or not 1 <= value < 2**31):
            raise CheckpointError(f"{path / 'config.json'}: '{key}' must be a positive integer below 2^31, got {short(value)}")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (path / name).is_file():
            _json_file(path / name)
    if (path / "tokenizer.json").is_file():
        check_tokenizer(path / "tokenizer.json", config.get("vocab_size"))
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)
    if not architecture:
        return path
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path / 'config.json'}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    return path
