"""The `awooop` command: parses the arguments and hands them to one verb module.

Each verb module (`dev`, `demo`) registers its own sub-commands and sets a
`handler` on the parsed arguments; the handler's return value is the exit
code. This module is the composition root: the only place wiring verbs
together.

Whatever a verb raises reaches the person as one line, `awooop: error: …`,
and exit status 2 (as argparse does for bad usage); `--traceback` (or
`AWOOOP_TRACEBACK=1`) prints the trace as well.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import traceback
from collections.abc import Callable

from awooop.cli import (
    approvals,
    audit,
    bridge,
    broker_recovery,
    budget_queries,
    contracts,
    demo,
    dev,
    dlq,
    mcp_calls,
    migrate,
    outbox,
    projector,
    queries,
    recover,
    runtime_commands,
    send,
    services,
    up,
)
from awooop.infra.logging import configure_logging
from awooop.infra.settings import SettingsError

EXIT_ERROR = 2

_EXPECTED = (
    SettingsError,
    migrate.MigrateError,
    outbox.OutboxCommandError,
    audit.AuditCommandError,
    audit.AuditFileUnreadable,
    dlq.DlqCommandError,
    projector.ProjectorCommandError,
    broker_recovery.RecoverError,
    contracts.ContractCommandError,
    contracts.ContractFileError,
    runtime_commands.RuntimeCommandError,
    budget_queries.BudgetQueryError,
    bridge.BridgeCommandError,
)
"""Refusals whose message is the whole story: no type name in front of it."""


def build_parser() -> argparse.ArgumentParser:
    """The full `awooop` argument parser, every verb registered."""
    parser = argparse.ArgumentParser(
        prog="awooop",
        description="AwoooP: an event-sourced control plane for chat agents.",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="print the full trace of an error as well"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    dev.register(verbs)
    up.register(verbs)
    services.register(verbs)
    send.register(verbs)
    bridge.register(verbs)
    queries.register(verbs)
    mcp_calls.register(verbs)
    approvals.register(verbs)
    runtime_commands.register(verbs)  # after queries: `runs cancel` joins `runs list | show`
    budget_queries.register(verbs)  # after runtime_commands: `budget show` joins `budget reset`
    contracts.register(verbs)
    demo.register(verbs)
    outbox.register(verbs)
    migrate.register(verbs)
    dlq.register(verbs)
    audit.register(verbs)
    projector.register(verbs)
    recover.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `awooop` verb and return its exit code (argparse exits 2 on bad usage)."""
    # One line at a time even into a pipe: callers wait for lines such as
    # "Ctrl-C stops" before acting.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    args = build_parser().parse_args(argv)
    if args.verb != "run":  # a service process configures its own logging
        # Operator commands print what they did; the library's log lines (a swap,
        # an outage being retried) go to stderr, and only from warnings up.
        configure_logging("warning")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # every failure of a verb becomes one line for the person
        if args.traceback or os.environ.get("AWOOOP_TRACEBACK") == "1":
            traceback.print_exc()
        print(f"awooop: error: {describe(error)}", file=sys.stderr)
        return EXIT_ERROR


def describe(error: BaseException) -> str:
    """One line saying what went wrong, with the type when the message alone is not enough."""
    text = " ".join(str(error).split()) or "(no message)"
    if isinstance(error, _EXPECTED):
        return text
    return f"{type(error).__name__}: {text} (rerun with --traceback for the trace)"


if __name__ == "__main__":
    raise SystemExit(main())
