"""Reading ``params.yaml`` into :class:`Params`, and the seeds derived from it."""

from __future__ import annotations

from pathlib import Path

from rlint.config.base import Section
from rlint.config.params import Params
from rlint.params_file import ConfigError, ParamsFileError, missing_tracked_keys, read_params_file, short, tracked_keys

MAX_MESSAGE_CHARS = 480  # a refusal is one line a person reads: values in it are cut (rlint/params_file.short)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; every error names the file and the key.

    The file is read by :func:`rlint.params_file.read_params_file` (no duplicate keys, aliases,
    empty file or non-mapping top level), and every key ``dvc.yaml`` beside it tracks must be
    written out: DVC reads those from the file, not from rlint's defaults. Imports no torch.
    """
    path = Path(path)
    try:
        raw = read_params_file(path)
        missing: dict[str, str] = {}  # key -> the first stage that tracks it
        for stage, key in missing_tracked_keys(path, raw):
            missing.setdefault(key, stage)
        if missing:
            (key, stage), others = next(iter(missing.items())), list(missing)[1:]
            default = _default(key)
            raise ConfigError(f"{key}: missing, but dvc.yaml stage {stage!r} tracks it (DVC reads it from this file, not from rlint's "
                              f"defaults){'; its default: ' + key + ': ' + short(default) if default is not _NO_DEFAULT else ''}"
                              f"{'; also missing: ' + ', '.join(others[:5]) + (', …' if len(others) > 5 else '') if others else ''}")
        params = Params(**raw)
        if path.name == "params.yaml" and any(key == "inputs" for _, key in tracked_keys(path.parent / "dvc.yaml")):
            params.check_inputs()
        return params
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a parameters file"
    except OSError as err:
        message = f"cannot be read: {err.strerror or type(err).__name__}"
    except (ParamsFileError, ConfigError) as err:
        message = str(err)
    message = " ".join(f"{path}: {message}".split())
    raise ConfigError(message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…") from None


_NO_DEFAULT = object()


def _default(dotted: str):
    """rlint's default for a dotted key (``sampling.max_new_tokens``), or _NO_DEFAULT."""
    node = Params()
    for part in dotted.split("."):
        if not isinstance(node, Section) or part not in type(node).model_fields:
            return _NO_DEFAULT
        node = getattr(node, part)
    return node.model_dump() if isinstance(node, Section) else node


def round_seed(params: Params, round_id: int, stage: str) -> int:
    """A distinct, stable seed per (run seed, round, stage)."""
    return (params.seed * 1_000_003 + round_id * 1009 + sum(map(ord, stage)) * 7) % (2**31 - 1)
