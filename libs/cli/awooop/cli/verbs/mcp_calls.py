"""The arguments of `awooop mcp-calls list`; `awooop.cli.mcp_calls` asks the query API."""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.demo_tenant import DEFAULT_PROJECT
from awooop.cli.verbs.deferred import DeferredHandler
from awooop.projector.domain.mcp_calls import MCP_CALL_STATUSES

WORK = "awooop.cli.mcp_calls"


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    calls = verbs.add_parser("mcp-calls", help="list recent tool calls and what became of each")
    what = calls.add_subparsers(dest="what", required=True, metavar="list")
    listing = what.add_parser("list", help="the newest tool calls of a project")
    listing.add_argument("--project", default=DEFAULT_PROJECT)
    listing.add_argument("--run", help="only this run's calls (its id)")
    listing.add_argument("--status", choices=MCP_CALL_STATUSES, help="only this status")
    listing.add_argument("--tool", help="only calls of this tool")
    listing.add_argument(
        "--gate", type=int, choices=range(1, 6), metavar="N", help="only calls refused at gate N"
    )
    listing.add_argument("--code", help="only this error code (E-MCP-GATE-004, …)")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (max 500)")
    listing.set_defaults(handler=DeferredHandler(WORK, "list_mcp_calls"))
