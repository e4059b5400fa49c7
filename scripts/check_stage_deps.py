"""Check that every rlint/flows module each DVC stage's command imports is among that stage's deps.

Usage: python scripts/check_stage_deps.py [--root .] [--write] [--quiet]

Prints, per stage of dvc.yaml, the module files its command imports (transitively, by static
analysis: rlint/stage_deps.py), the code deps it lists, and those imported but not listed; then
the total missing. Exit code 0 when none are missing, 1 when some are, 2 on bad input.

--write replaces each stage's code deps (those under rlint/ or flows/) in dvc.yaml by exactly
the files its command imports, keeping data deps, params, outs and comments; running it twice
changes nothing the second time. A stage whose deps change is reported changed by `dvc status`
afterwards: rerun it (`dvc repro`), or `dvc commit` it when its outputs are known to be the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlint.stage_deps import StageDepsError, check_stage, cli_commands, dvc_stages, read_sources, rewrite_code_deps  # noqa: E402
from rlint.stage_graph import COMMANDS  # noqa: E402


def check(root: Path) -> list:
    """One :class:`rlint.stage_deps.StageCheck` per stage of ``root/dvc.yaml``."""
    sources, packages = read_sources(root)
    commands = cli_commands(sources["rlint.cli"], COMMANDS)
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    return [check_stage(name, cmd, deps, sources, packages, commands) for name, cmd, deps in dvc_stages(dvc_yaml)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root holding dvc.yaml, rlint/ and flows/")
    parser.add_argument("--write", action="store_true", help="rewrite the code deps of dvc.yaml from the import graph")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    args = parser.parse_args(argv)
    dvc_file = args.root / "dvc.yaml"
    try:
        results = check(args.root)
    except (OSError, StageDepsError, SyntaxError, yaml.YAMLError) as err:
        print(f"check_stage_deps: error: {err}", file=sys.stderr)
        return 2
    print(f"{'stage':<14} {'imported':>8} {'listed':>7} {'missing':>8} {'unused':>7}")
    for r in results:
        print(f"{r.stage:<14} {len(r.imported):>8} {len(r.listed):>7} {len(r.missing):>8} {len(r.unused):>7}")
        if not args.quiet:
            for path in r.missing:
                print(f"  missing {path}")
            for path in r.unused:
                print(f"  unused  {path}")
    missing = sum(len(r.missing) for r in results)
    print(f"total missing: {missing}")
    if args.write:
        text = dvc_file.read_text()
        new = rewrite_code_deps(text, {r.stage: list(r.imported) for r in results})
        if new != text:
            tmp = dvc_file.with_name(f".{dvc_file.name}.tmp{os.getpid()}")
            tmp.write_text(new)
            os.replace(tmp, dvc_file)
            print(f"wrote {dvc_file}: code deps of {sum(1 for r in results if r.missing or r.unused)} stages regenerated")
        else:
            print(f"{dvc_file}: already up to date")
        return 0
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
