"""The `awooop` command: parses the arguments and hands them to one verb module.

Each verb module (`dev`, `demo`) registers its own sub-commands and sets a
`handler` on the parsed arguments; the handler's return value is the exit
code. This module is the composition root: the only place wiring verbs
together.

`awooop <verb> …` imports only the modules that register that verb (`VERBS`), so a
light verb does not pay for the heavy ones; `awooop --help`, or anything that does
not name a verb first, builds the whole parser (`REGISTRARS`).

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
from collections.abc import Callable, Sequence
from importlib import import_module

EXIT_ERROR = 2

REGISTRARS = (
    "awooop.cli.dev",
    "awooop.cli.up",
    "awooop.cli.services",
    "awooop.cli.verbs.send",
    "awooop.cli.bridge",
    "awooop.cli.verbs.queries",
    "awooop.cli.verbs.mcp_calls",
    "awooop.cli.verbs.approvals",
    "awooop.cli.verbs.runtime_commands",  # after queries: `runs cancel` joins `runs list | show`
    "awooop.cli.verbs.budget_queries",  # after runtime_commands: `budget show` joins `budget reset`
    "awooop.cli.verbs.contracts",
    "awooop.cli.demo",
    "awooop.cli.outbox",
    "awooop.cli.migrate",
    "awooop.cli.dlq",
    "awooop.cli.audit",
    "awooop.cli.projector",
    "awooop.cli.recover",
)
"""Every module with a `register(verbs)`, in the order `awooop --help` lists their verbs."""

VERBS = {
    "dev": ("awooop.cli.dev",),
    "up": ("awooop.cli.up",),
    "run": ("awooop.cli.services",),
    "send": ("awooop.cli.verbs.send",),
    "bridge": ("awooop.cli.bridge",),
    "token": ("awooop.cli.verbs.queries",),
    "runs": ("awooop.cli.verbs.queries", "awooop.cli.verbs.runtime_commands"),
    "channel-events": ("awooop.cli.verbs.queries",),
    "mcp-calls": ("awooop.cli.verbs.mcp_calls",),
    "approvals": ("awooop.cli.verbs.approvals",),
    "budget": ("awooop.cli.verbs.runtime_commands", "awooop.cli.verbs.budget_queries"),
    "contracts": ("awooop.cli.verbs.contracts",),
    "run-demo": ("awooop.cli.demo",),
    "outbox": ("awooop.cli.outbox",),
    "migrate": ("awooop.cli.migrate",),
    "dlq": ("awooop.cli.dlq",),
    "audit": ("awooop.cli.audit",),
    "projector": ("awooop.cli.projector",),
    "recover": ("awooop.cli.recover",),
}
"""Each verb and the modules that register it, in `REGISTRARS` order: a verb's parser
built from these alone is the one the whole parser holds."""

_EXPECTED = (
    "awooop.infra.settings:SettingsError",
    "awooop.cli.migrate:MigrateError",
    "awooop.cli.outbox:OutboxCommandError",
    "awooop.cli.audit:AuditCommandError",
    "awooop.security.audit_file:AuditFileUnreadable",
    "awooop.cli.dlq_replay:DlqCommandError",
    "awooop.cli.projector:ProjectorCommandError",
    "awooop.cli.broker_recovery:RecoverError",
    "awooop.cli.contract_client:ContractCommandError",
    "awooop.cli.contract_files:ContractFileError",
    "awooop.cli.runtime_client:RuntimeCommandError",
    "awooop.cli.budget_queries:BudgetQueryError",
    "awooop.cli.bridge:BridgeCommandError",
)
"""Refusals whose message is the whole story (no type name in front of it), as
`module:class` where the class is defined: an error of a class whose module was never
imported cannot have been raised, so nothing is imported to recognise one."""


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The `awooop` argument parser: with `verb`, only the modules registering it
    (`VERBS`); without, every verb registered."""
    parser = argparse.ArgumentParser(
        prog="awooop",
        description="AwoooP: an event-sourced control plane for chat agents.",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="print the full trace of an error as well"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for module in VERBS[verb] if verb is not None else REGISTRARS:
        import_module(module).register(verbs)
    return parser


def chosen_verb(argv: Sequence[str]) -> str | None:
    """The verb `argv` names, when nothing but `--traceback` comes before it; None
    otherwise (no verb, an unknown one, `--help`), which takes the whole parser."""
    for arg in argv:
        if arg != "--traceback":
            return arg if arg in VERBS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one `awooop` verb and return its exit code (argparse exits 2 on bad usage)."""
    # One line at a time even into a pipe: callers wait for lines such as
    # "Ctrl-C stops" before acting.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    given = sys.argv[1:] if argv is None else argv
    args = build_parser(chosen_verb(given)).parse_args(given)
    if args.verb != "run":  # a service process configures its own logging
        # Imported here, not above: `--help` and usage errors have exited by now.
        from awooop.infra.logging import configure_logging

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
    if is_expected(error):
        return text
    return f"{type(error).__name__}: {text} (rerun with --traceback for the trace)"


def is_expected(error: BaseException) -> bool:
    """Whether `error` is one of the `_EXPECTED` refusals, consulting loaded modules only."""
    for name in _EXPECTED:
        module_name, _, class_name = name.partition(":")
        module = sys.modules.get(module_name)
        refusal = getattr(module, class_name, None)
        if isinstance(refusal, type) and isinstance(error, refusal):
            return True
    return False


if __name__ == "__main__":
    raise SystemExit(main())
