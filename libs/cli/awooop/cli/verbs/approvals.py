"""The arguments of `awooop approvals list | approve | reject`; `awooop.cli.approvals`
asks the query API and votes through the approval service."""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.demo_tenant import DEFAULT_PROJECT
from awooop.cli.verbs.deferred import DeferredHandler
from awooop.cli.verbs.options import auth_options
from awooop.projector.domain.approvals import APPROVAL_STATES

WORK = "awooop.cli.approvals"


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    approvals = verbs.add_parser(
        "approvals", help="list approval requests of held tool calls, or vote on one"
    )
    what = approvals.add_subparsers(dest="what", required=True, metavar="list|approve|reject")
    listing = what.add_parser("list", help="the newest approval requests of a project")
    listing.add_argument("--project", default=DEFAULT_PROJECT)
    listing.add_argument("--state", choices=APPROVAL_STATES, help="only this state")
    listing.add_argument("--run", help="only this run's requests (its id)")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (max 200)")
    listing.set_defaults(handler=DeferredHandler(WORK, "list_approvals"))
    for decision, summary in (
        ("approve", "approve a pending request (approval API)"),
        ("reject", "reject a pending request (approval API)"),
    ):
        vote = what.add_parser(decision, help=summary)
        vote.add_argument("approval_id", metavar="APPROVAL_ID")
        vote.add_argument(
            "--project", default=DEFAULT_PROJECT, help="the project a development token names"
        )
        auth_options(vote, role=": who votes")
        vote.set_defaults(handler=DeferredHandler(WORK, "decide"), decision=decision)
