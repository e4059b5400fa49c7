"""Which code each DVC stage runs: the static import graph of its command, against its ``deps``.

A stage whose command imports a module that is not among its ``deps`` can change behaviour
without DVC seeing it (``dvc status`` clean, old outputs kept). This module computes, for each
stage of ``dvc.yaml``, every module of the project's packages (``rlint``, ``flows``) that its
command can import, transitively, and compares that with the stage's ``deps``.

The analysis is static (``ast``) and conservative: module-level and in-function imports,
``from a import b`` where ``a.b`` is a module, ``importlib.import_module("a.b")`` and
``__import__("a.b")`` with a literal name, and every package ``__init__.py`` that importing a
submodule executes. Entry points: ``rlint <command>`` runs ``rlint/cli.py``, which imports
``rlint/stages/<command>.py`` for each stage command (``COMMANDS`` of rlint/stage_graph.py) and the
module its ``TOOLS`` dict names for the other commands (the only imports it builds from a variable); ``python -m a.b``
and ``python path.py`` run that module.

The pure functions take module names and source texts; :func:`read_sources` is the file reader.
"""

from __future__ import annotations

import ast
import shlex
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("rlint", "flows")


class StageDepsError(ValueError):
    """dvc.yaml names a command this check cannot map to modules."""


def module_path(name: str, packages: set[str]) -> str:
    """The file a module name lives in, relative to the repository root.

    >>> module_path("rlint.tasks", {"rlint.tasks"}), module_path("rlint.cli", set())
    ('rlint/tasks/__init__.py', 'rlint/cli.py')
    """
    return name.replace(".", "/") + ("/__init__.py" if name in packages else ".py")


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every absolute module name ``source`` may import (candidates: ``from a import b`` gives ``a`` and ``a.b``).

    Walks the whole tree, so imports inside functions count. Relative imports are resolved
    against ``module`` (a package resolves ``.`` to itself).

    >>> sorted(imported_names("import a.b\\nfrom . import c\\ndef f():\\n    from .d import e\\n", "p.m", False))
    ['a.b', 'p', 'p.c', 'p.d', 'p.d.e']
    >>> sorted(imported_names("import importlib\\nimportlib.import_module('x.y')\\n__import__(f'z.{n}')\\n", "m", False))
    ['importlib', 'x.y']
    """
    found: set[str] = set()
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base[: len(base) - node.level + 1] if node.level else []
            prefix = ".".join(parent + ([node.module] if node.module else []))
            if prefix:
                found.add(prefix)
            found.update(f"{prefix}.{alias.name}" if prefix else alias.name for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in ("import_module", "__import__"):
                found.add(node.args[0].value)
    return found


def import_closure(entries: list[str], sources: dict[str, str], packages: set[str]) -> set[str]:
    """The modules of ``sources`` that importing ``entries`` can execute, their parent packages included.

    ``sources`` maps module name → source text (packages by their own name, for their
    ``__init__.py``); ``packages`` is the set of those names that are packages. Names outside
    ``sources`` (the standard library, third-party packages) are dropped.

    >>> src = {"p": "", "p.a": "from p import b", "p.b": "def f():\\n    import p.c", "p.c": "", "p.d": ""}
    >>> sorted(import_closure(["p.a"], src, {"p"}))
    ['p', 'p.a', 'p.b', 'p.c']
    """
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        chain = [".".join(parts[: i + 1]) for i in range(len(parts))]  # importing a.b.c runs a, a.b, a.b.c
        for mod in chain:
            if mod in sources and mod not in seen:
                seen.add(mod)
                todo.extend(imported_names(sources[mod], mod, mod in packages))
    return seen


def cli_commands(cli_source: str, stage_commands: tuple[str, ...]) -> dict[str, str]:
    """``rlint`` sub-command → the module it runs: ``rlint.stages.<command>`` for each of ``stage_commands``
    (rlint/stage_graph.py's ``COMMANDS``), and ``rlint/cli.py``'s ``TOOLS`` dict for the others.

    These are the imports the CLI builds from a variable, so the import walk cannot see them.

    >>> cli_commands("TOOLS = {'report': 'rlint.report'}\\n", ("bootstrap",))
    {'bootstrap': 'rlint.stages.bootstrap', 'report': 'rlint.report'}
    """
    tools = {}
    for node in ast.parse(cli_source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "TOOLS":
            tools = ast.literal_eval(node.value)
    return {**{stage: f"rlint.stages.{stage}" for stage in stage_commands}, **tools}


def entry_modules(cmd: str, commands: dict[str, str]) -> list[str]:
    """The modules a ``dvc.yaml`` command starts from (``commands``: see :func:`cli_commands`).

    >>> entry_modules("rlint rollout --round 3", {"rollout": "rlint.stages.rollout"}), entry_modules("python -m flows.rounds", {})
    (['rlint.cli', 'rlint.stages.rollout'], ['flows.rounds'])
    """
    words = shlex.split(cmd)
    if words[:1] == ["rlint"]:
        rest = words[1:]
        while rest and rest[0].startswith("-"):  # global options precede the command: --params F, --root=R
            rest = rest[1:] if "=" in rest[0] else rest[2:]
        command = rest[0] if rest else None
        if command not in commands:
            raise StageDepsError(f"dvc.yaml: command {cmd!r}: rlint has no sub-command {command!r} (rlint/stage_graph.py: COMMANDS; rlint/cli.py: TOOLS)")
        return ["rlint.cli", commands[command]]
    if len(words) >= 3 and words[0].startswith("python") and words[1] == "-m":
        return [words[2]]
    if len(words) >= 2 and words[0].startswith("python") and words[1].endswith(".py"):
        return [words[1].removesuffix(".py").replace("/", ".")]
    raise StageDepsError(f"dvc.yaml: command {cmd!r}: not `rlint <command>`, `python -m <module>` or `python <file>.py`")


def is_code_dep(path: str) -> bool:
    """A dep that names project code (a module file or a package directory), not data.

    >>> is_code_dep("rlint/engine"), is_code_dep("rlint/stages/mine.py"), is_code_dep("data/rollouts/round=${item.id}")
    (True, True, False)
    """
    return path.split("/")[0] in PACKAGES


def covered(path: str, deps: list[str]) -> bool:
    """Whether ``path`` is one of ``deps`` or lies under a directory among them.

    >>> covered("rlint/engine/hf.py", ["rlint/engine"]), covered("rlint/engine.py", ["rlint/engine"])
    (True, False)
    """
    return any(path == d.rstrip("/") or path.startswith(d.rstrip("/") + "/") for d in deps)


@dataclass(frozen=True)
class StageCheck:
    """One stage: the module files its command imports, its code deps, and those imported but not listed."""

    stage: str
    imported: tuple[str, ...]
    listed: tuple[str, ...]
    missing: tuple[str, ...]
    unused: tuple[str, ...]


def check_stage(stage: str, cmd: str, deps: list[str], sources: dict[str, str], packages: set[str], commands: dict[str, str]) -> StageCheck:
    """Compare one stage's deps with the files its command imports (sorted paths)."""
    files = sorted(module_path(m, packages) for m in import_closure(entry_modules(cmd, commands), sources, packages))
    listed = [d for d in deps if is_code_dep(d)]
    missing = tuple(f for f in files if not covered(f, listed))
    unused = tuple(d for d in listed if not any(covered(f, [d]) for f in files))
    return StageCheck(stage, tuple(files), tuple(listed), missing, unused)


def read_sources(root: Path) -> tuple[dict[str, str], set[str]]:
    """Module name → source text for every ``.py`` file of :data:`PACKAGES` under ``root``, and the package names."""
    sources: dict[str, str] = {}
    packages: set[str] = set()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
                packages.add(".".join(parts))
            sources[".".join(parts)] = path.read_text()
    return sources, packages  # a directory without __init__.py (rlint) is a namespace package: nothing of its own runs


def dvc_stages(dvc_yaml: dict) -> list[tuple[str, str, list[str]]]:
    """``(stage, cmd, deps)`` for each stage of a parsed ``dvc.yaml`` (a ``foreach`` stage once, by its ``do``).

    >>> dvc_stages({"stages": {"a": {"cmd": "rlint a", "deps": ["x"]}, "b": {"foreach": "${r}", "do": {"cmd": "rlint b"}}}})
    [('a', 'rlint a', ['x']), ('b', 'rlint b', [])]
    """
    out = []
    for name, stage in (dvc_yaml.get("stages") or {}).items():
        body = stage.get("do", stage)
        if "cmd" not in body:
            raise StageDepsError(f"dvc.yaml: stage {name!r} has no cmd")
        out.append((name, body["cmd"], [str(d) for d in body.get("deps") or []]))
    return out


def _item_value(line: str) -> str:
    return line.strip()[2:].split(" #")[0].strip().strip("'\"")


def rewrite_code_deps(text: str, code_deps: dict[str, list[str]]) -> str:
    """``dvc.yaml``'s text with each named stage's code deps replaced by ``code_deps[stage]``.

    Data deps keep their order and come first; the code deps follow, one per line, in the order
    given. Comments, params, outs and every other line stay as they are. A stage without ``deps:``
    gets one after its ``cmd:`` line. Applying it twice gives the same text.

    >>> text = "stages:\\n  s:\\n    cmd: rlint s\\n    deps:\\n      - data/x  # input\\n      - rlint/old.py\\n    outs:\\n      - y\\n"
    >>> print(rewrite_code_deps(text, {"s": ["rlint/a.py", "rlint/b.py"]}), end="")
    stages:
      s:
        cmd: rlint s
        deps:
          - data/x  # input
          - rlint/a.py
          - rlint/b.py
        outs:
          - y
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    in_stages, stage = False, None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        key = stripped.split(" #")[0].strip()
        if key and indent == 0:
            in_stages, stage = key == "stages:", None
        if in_stages and indent == 2 and key.endswith(":"):
            stage = key[:-1]
        if stage in code_deps and stripped == "deps:":
            out.append(line)
            i += 1
            item_indent = None
            last_data = len(out)
            while i < len(lines):
                nxt = lines[i]
                nxt_indent = len(nxt) - len(nxt.lstrip())
                if nxt.strip() and nxt_indent <= indent:
                    break
                if nxt.strip().startswith("- "):
                    item_indent = item_indent or nxt[:nxt_indent]
                    if is_code_dep(_item_value(nxt)):
                        i += 1
                        continue
                    out.append(nxt)
                    last_data = len(out)
                elif nxt.strip():
                    out.append(nxt)  # a comment inside the list
                    last_data = len(out) if nxt.strip().startswith("#") else last_data
                else:
                    break
                i += 1
            pad = item_indent or " " * (indent + 2)
            out[last_data:last_data] = [f"{pad}- {dep}\n" for dep in code_deps[stage]]
            code_deps = {k: v for k, v in code_deps.items() if k != stage}
            continue
        if stage in code_deps and code_deps[stage] and stripped.startswith("cmd:") and not _has_deps(lines, i, indent):
            out.append(line)
            out.append(f"{' ' * indent}deps:\n" + "".join(f"{' ' * (indent + 2)}- {dep}\n" for dep in code_deps[stage]))
            code_deps = {k: v for k, v in code_deps.items() if k != stage}
            i += 1
            continue
        out.append(line)
        i += 1
    return "".join(out)


def _has_deps(lines: list[str], start: int, indent: int) -> bool:
    """Whether the mapping that holds ``lines[start]`` (at ``indent``) has a ``deps:`` key."""
    for line in lines[start + 1 :]:
        ind = len(line) - len(line.lstrip())
        if line.strip() and not line.strip().startswith("#") and ind < indent:
            return False
        if ind == indent and line.strip() == "deps:":
            return True
    return False
