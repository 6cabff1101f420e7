"""The arguments of `awooop token`, `awooop runs list | show` and `awooop channel-events
list`; `awooop.cli.queries` asks the query API."""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.demo_tenant import DEFAULT_PROJECT
from awooop.cli.verbs.deferred import DeferredHandler
from awooop.projector.domain.channel_events import CHANNEL_OUTCOMES

WORK = "awooop.cli.queries"


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    token = verbs.add_parser("token", help="mint a development bearer token for the query API")
    token.add_argument("--project", action="append", help="a project the token names (repeat)")
    token.add_argument("--role", action="append", help="a role the token grants (repeat)")
    token.add_argument("--subject", default="dev")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.set_defaults(handler=DeferredHandler(WORK, "print_token"))

    runs = verbs.add_parser("runs", help="list runs, or show one with its timeline")
    which = runs.add_subparsers(dest="what", required=True, metavar="list|show")
    listing = which.add_parser("list", help="the newest runs of a project")
    listing.add_argument("--project", default=DEFAULT_PROJECT)
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(handler=DeferredHandler(WORK, "list_runs"))
    show = which.add_parser("show", help="one run and its timeline")
    show.add_argument("run_id")
    show.add_argument("--project", default=DEFAULT_PROJECT)
    show.set_defaults(handler=DeferredHandler(WORK, "show_run"))

    channel = verbs.add_parser(
        "channel-events", help="list recent inbound records and what became of each"
    )
    what = channel.add_subparsers(dest="what", required=True, metavar="list")
    events = what.add_parser("list", help="the newest channel events of a project")
    events.add_argument("--project", default=DEFAULT_PROJECT)
    events.add_argument("--outcome", choices=CHANNEL_OUTCOMES, help="only this outcome")
    events.add_argument("--channel", help="only this channel (telegram, slack)")
    events.add_argument("--prefix", help="only provider event ids starting with this")
    events.add_argument("--limit", type=int, default=20, help="at most this many (max 500)")
    events.set_defaults(handler=DeferredHandler(WORK, "list_channel_events"))
