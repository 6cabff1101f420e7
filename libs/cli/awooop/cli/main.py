"""The `awooop` command: parses the arguments and hands them to one verb module.

Each verb module (`dev`, `demo`) registers its own sub-commands and sets a
`handler` on the parsed arguments; the handler's return value is the exit
code. This module is the composition root: the only place wiring verbs
together.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable

from awooop.cli import demo, dev, outbox, queries, send, services, up


def build_parser() -> argparse.ArgumentParser:
    """The full `awooop` argument parser, every verb registered."""
    parser = argparse.ArgumentParser(
        prog="awooop",
        description="AwoooP: an event-sourced control plane for chat agents.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    dev.register(verbs)
    up.register(verbs)
    services.register(verbs)
    send.register(verbs)
    queries.register(verbs)
    demo.register(verbs)
    outbox.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `awooop` verb and return its exit code (argparse exits 2 on bad usage)."""
    # One line at a time even into a pipe: callers wait for lines such as
    # "Ctrl-C stops" before acting.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
