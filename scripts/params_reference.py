"""Write docs/parameters.md, the parameter reference, from the pydantic sections in rlint/config/.

    python scripts/params_reference.py          # write it
    python scripts/params_reference.py --check  # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlint.config.reference import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/parameters.md differs")
    args = parser.parse_args(argv)
    text = reference()
    if args.check:
        same = DOC.is_file() and DOC.read_text() == text
        print(f"{DOC}: {'up to date' if same else 'stale: run python scripts/params_reference.py'}")
        return 0 if same else 1
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
