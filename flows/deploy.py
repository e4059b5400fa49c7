"""A deployment of the rounds (or campaign) flow on a Prefect work pool, run by a worker where the GPUs are.

    export PREFECT_API_URL=http://prefect-host:4200/api           # every machine: the shared server
    prefect work-pool create --type process gpu                    # once
    prefect worker start --pool gpu                                # on each GPU machine, venv active
    python -m flows.deploy --pool gpu --root /shared/ws             # the deployment (rlint-rounds/rlint-rounds)
    prefect deployment run rlint-rounds/rlint-rounds                # a run: the next free worker takes it

``flow.serve`` (flows/campaign.py) keeps deployment and execution in one process on one machine;
here the deployment lives on the server and any worker polling the pool executes it. The code
source is this checkout (``--source``, a local folder): the deployment's pull step is
``set_working_directory`` to that folder, so the folder must exist at the same path on every
worker machine (a shared disk, or the same checkout path); the worker runs the flow with its own
Python (``sys.executable``), so start it in the venv that has rlint. ``--root`` is the workspace
as the worker sees it. See docs/scaling.md.

Bad input exits 2 with one line, before anything is created: no ``PREFECT_API_URL`` (Prefect
would otherwise deploy to a temporary server that vanishes with this process), a work pool
the server does not have, a workspace whose params.yaml is missing or invalid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

import flows.rounds  # noqa: F401 - sets the offline Prefect defaults before prefect is imported

from prefect.settings import PREFECT_API_URL  # noqa: E402

from rlint.config import ConfigError, load_params  # noqa: E402

CODE = Path(__file__).resolve().parent.parent  # the checkout holding flows/ and rlint/
FLOWS = {"rounds": "flows/rounds.py:run_rounds", "campaign": "flows/campaign.py:campaign"}


class DeployError(ValueError):
    """Bad input for a deployment: exit 2, nothing created."""


class ServerError(RuntimeError):
    """The Prefect server did not answer: exit 1, nothing created."""


def flow_parameters(args: argparse.Namespace) -> dict:
    """The deployment's default parameters for the chosen flow; ``root`` absolute, as the worker resolves nothing."""
    root = str(Path(args.root).resolve())
    if args.flow == "rounds":
        return {"root": root, "rounds": args.rounds}
    return {"root": root, "rounds_per_run": args.rounds_per_run, "max_rounds": args.max_rounds}


def check(args: argparse.Namespace) -> None:
    """Refuse, with one line naming what is wrong, before anything is created on the server."""
    try:
        load_params(Path(args.root) / "params.yaml")
    except ConfigError as err:
        raise DeployError(f"--root: {err}") from None
    if not (Path(args.source) / FLOWS[args.flow].split(":")[0]).is_file():
        raise DeployError(f"--source {args.source}: no {FLOWS[args.flow].split(':')[0]} there (the folder holding flows/ and rlint/)")
    if not PREFECT_API_URL.value():
        raise DeployError("PREFECT_API_URL is not set: point it at the Prefect server the workers poll (http://HOST:4200/api)")
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(args.pool)
        except ObjectNotFound:
            raise DeployError(f"--pool {args.pool}: no such work pool on {PREFECT_API_URL.value()} "
                              f"(create it: prefect work-pool create --type process {args.pool})") from None
        except httpx.HTTPError as err:  # not bad input: the server is down or elsewhere
            raise ServerError(f"Prefect server at {PREFECT_API_URL.value()}: {type(err).__name__}: {err}") from None
    if pool.type != "process":
        print(f"flows.deploy: note: work pool {args.pool!r} is of type {pool.type!r}; its job template must run this checkout "
              f"(docs/scaling.md)", file=sys.stderr)


def deploy(args: argparse.Namespace) -> str:
    """Create (or update) the deployment; returns ``<flow name>/<deployment name>`` for ``prefect deployment run``."""
    from prefect import Flow

    flow = Flow.from_source(source=str(Path(args.source).resolve()), entrypoint=FLOWS[args.flow])
    name = args.name or flow.name
    # build/push: no image; the code is the local source folder (the pull step sets the worker's working directory).
    # concurrency_limit=1: the server starts one run of this deployment at a time and queues the next, also when
    # workers on two machines poll the pool (the workspace lock is a flock, which a shared disk may not honour)
    flow.deploy(name=name, work_pool_name=args.pool, parameters=flow_parameters(args), build=False, push=False, concurrency_limit=1,
                description=f"rlint {args.flow} on {Path(args.root).resolve()}", tags=["rlint"], print_next_steps=False,
                ignore_warnings=True)
    return f"{flow.name}/{name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy the rlint rounds or campaign flow to a Prefect work pool (needs PREFECT_API_URL).")
    parser.add_argument("--pool", required=True, help="the work pool whose workers run the flow (prefect work-pool create --type process NAME)")
    parser.add_argument("--root", required=True, help="the workspace (params.yaml, dvc.yaml) at the path the workers see")
    parser.add_argument("--name", default=None, help="deployment name (default: the flow's name, rlint-rounds or rlint-campaign)")
    parser.add_argument("--flow", choices=sorted(FLOWS), default="rounds", help="rounds: the rounds in params.yaml; campaign: those, then append more")
    parser.add_argument("--source", default=str(CODE), help="the checkout holding flows/ and rlint/, at the same path on every worker (default: this one)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds flow: only the first N rounds of params.yaml")
    parser.add_argument("--rounds-per-run", type=int, default=1, help="campaign flow: rounds appended per run")
    parser.add_argument("--max-rounds", type=int, default=None, help="campaign flow: stop appending at this many rounds")
    args = parser.parse_args(argv)
    try:
        check(args)
    except (DeployError, ServerError) as err:
        print(f"flows.deploy: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, DeployError) else 1
    target = deploy(args)
    print(f"deployment {target} on work pool {args.pool!r}; start a run with: prefect deployment run {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
