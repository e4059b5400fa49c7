"""Scheduled training campaign: every run finishes the rounds already listed, then appends and runs the next.

    prefect server start --host 127.0.0.1                          # terminal 1: the API and the scheduler
    export PREFECT_API_URL=http://127.0.0.1:4200/api              # terminal 2:
    python -m flows.campaign serve --interval 3600 --max-rounds 20  # the deployment, served by this process

``flow.serve`` (not a work pool): the deployment, its schedule and the process that executes it
are one long-lived Python process in the workspace, with the workspace's own venv; a process
work pool would add a worker, a ``prefect.yaml`` and pull steps for no gain on one machine.
See docs/campaigns.md; for workers on other machines, flows/deploy.py and docs/scaling.md.

Each run holds the workspace lock (flows/lock.py), so a second run at the same time (a
schedule that overlaps a long round, or a manual ``python -m flows.rounds``) fails at once
without touching anything. A run first reproduces every round already in ``params.yaml``
(DVC skips what is done, so an interrupted round resumes at its first stale stage), then
appends ``rounds_per_run`` rounds with :func:`rlint.rounds.add_round` (what ``rlint add-round``
does) and runs them, stopping at ``max_rounds``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from flows.rounds import publish_metrics, reproduce_rounds  # sets the offline Prefect defaults first

from prefect import flow, get_run_logger  # noqa: E402

from flows.lock import workspace_lock  # noqa: E402
from rlint.config import load_params  # noqa: E402
from rlint.rounds import add_round  # noqa: E402


def listed_rounds(root: str) -> list[int]:
    return sorted(item["id"] for item in load_params(Path(root) / "params.yaml").rounds.values())


@flow(name="rlint-campaign", log_prints=True)
def campaign(root: str = ".", rounds_per_run: int = 1, max_rounds: int | None = None) -> list[int]:
    """Finish the listed rounds, then add up to ``rounds_per_run`` new ones (never past ``max_rounds``) and run them.

    Returns the ids of the rounds this run appended.
    """
    root = str(Path(root).resolve())
    added: list[int] = []
    with workspace_lock(root, "rlint-campaign flow"):
        logger = get_run_logger()
        done = listed_rounds(root)
        reproduce_rounds(root, done)  # resume: DVC reruns only what is not up to date
        for _ in range(rounds_per_run):
            if max_rounds is not None and len(done) >= max_rounds:
                logger.info("campaign: %d rounds, the maximum (%d); nothing to add", len(done), max_rounds)
                break
            new_round = add_round(Path(root) / "params.yaml")
            logger.info("campaign: appended round %d to params.yaml", new_round)
            reproduce_rounds(root, [new_round])
            done.append(new_round)
            added.append(new_round)
        table = publish_metrics(root)
    print("\n" + table)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run or serve the rlint training campaign (needs PREFECT_API_URL for serve).")
    parser.add_argument("command", choices=("run", "serve"), help="run: one campaign run now; serve: the scheduled deployment")
    parser.add_argument("--root", default=".", help="workspace holding params.yaml and dvc.yaml")
    parser.add_argument("--rounds-per-run", type=int, default=1)
    parser.add_argument("--max-rounds", type=int, default=None, help="stop appending rounds once params.yaml lists this many")
    parser.add_argument("--interval", type=float, default=3600.0, help="serve: seconds between scheduled runs")
    parser.add_argument("--cron", default=None, help="serve: a cron schedule instead of --interval")
    args = parser.parse_args(argv)
    parameters = {"root": str(Path(args.root).resolve()), "rounds_per_run": args.rounds_per_run, "max_rounds": args.max_rounds}
    if args.command == "run":
        campaign(**parameters)
        return 0
    schedule = {"cron": args.cron} if args.cron else {"interval": timedelta(seconds=args.interval)}
    # limit=1: this process runs one campaign at a time; the workspace lock refuses any other process
    campaign.serve(name="rlint-campaign", parameters=parameters, limit=1, **schedule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
