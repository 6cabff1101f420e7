"""`awooop recover broker-reset`: the platform back on a new, empty broker.

A broker loss leaves every event store and read model in Postgres and nothing
in Kafka; the services notice the new broker epoch, halt (`E-BROKER-RESET`)
and wait. This operator command (the admin URL; no service holds it) brings
them back: topics, epoch, outboxes refilled and published, read models rebuilt
(the steps, and why each is safe to repeat, are in `broker_recovery`).

Each halted service sees the epoch in its schema within
`AWOOOP_EPOCH_CHECK_SECONDS` and restarts itself in place: consumers start
again from offset 0 of the refilled topics, and their inboxes absorb what they
applied before the loss; side effects stay guarded by their own ids.

Exit codes: 0 recovered (or nothing to recover); 2 a refusal or an outage, in
one line: run the command again once its cause is fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from awooop.cli.broker_recovery import RecoveryReport, recover_broker_reset
from awooop.cli.projector import RebuildDisplay
from awooop.infra.settings import Settings
from awooop.projector.rebuild import LIVE_SCHEMA


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    recover = verbs.add_parser("recover", help="bring the platform back after a fault")
    which = recover.add_subparsers(dest="what", required=True, metavar="broker-reset")
    reset = which.add_parser(
        "broker-reset",
        help="after a broker loss: topics, outboxes refilled, new epoch, read models rebuilt",
    )
    reset.add_argument("--quiet", action="store_true", help="no progress display")
    reset.set_defaults(handler=run_broker_reset)


def report_lines(report: RecoveryReport) -> list[str]:
    """What the recovery did, a line per step."""
    said = [f"broker epoch {report.epoch}; registry topics present"]
    for s in report.schemas:
        if s.refilled is None:
            said.append(f"{s.schema}: on this epoch already; {s.published} events published")
        else:
            said.append(
                f"{s.schema}: outbox refilled with {s.refilled} events, {s.published} published"
            )
    if report.rebuilt_records is None:
        said.append(f"{LIVE_SCHEMA}: read models on this epoch already")
    else:
        said.append(
            f"{LIVE_SCHEMA}: read models rebuilt from {report.rebuilt_records} records "
            f"({report.rebuilt_events_per_second:,.0f} events/s); "
            f"the previous ones are kept as {report.old_read_models}"
        )
    said.append("halted services resume on their own within AWOOOP_EPOCH_CHECK_SECONDS")
    return said


def _to_stderr(line: str) -> None:
    """Each step as it ends, for a log; the summary that follows goes to stdout."""
    print(line, file=sys.stderr)


@contextmanager
def _display(quiet: bool) -> Iterator[RebuildDisplay | None]:
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    with RebuildDisplay(console) as display:
        yield display


def recover_and_report(settings: Settings, *, quiet: bool = False) -> Sequence[str]:
    """Run the recovery to its end (progress on a terminal); the lines that say what it did."""
    with _display(quiet) as display:
        report = asyncio.run(
            recover_broker_reset(
                settings,
                on_progress=display.update if display else None,
                say=_to_stderr if display is None and not quiet else lambda _line: None,
            )
        )
    return report_lines(report)


def run_broker_reset(args: argparse.Namespace) -> int:
    for line in recover_and_report(Settings.from_env(admin=True), quiet=args.quiet):
        print(line)
    return 0
