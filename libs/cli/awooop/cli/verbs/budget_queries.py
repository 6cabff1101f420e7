"""The arguments of `awooop budget show`; `awooop.cli.budget_queries` asks the query API.

`show` joins the sub-commands of the `budget` verb when another module registered it
(`budget reset`), else it creates the verb.
"""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.verbs.deferred import DeferredHandler

WORK = "awooop.cli.budget_queries"


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    commands = _budget_commands(verbs)
    show = commands.add_parser(
        "show", help="kill switch, today's and this month's usage per agent, and limits"
    )
    commands.metavar = "|".join(commands.choices)
    show.add_argument(
        "--project", action="append", help="a project to show (repeat; default: demo)"
    )
    show.add_argument("--day", help="the UTC day to show (YYYY-MM-DD, default today)")
    show.add_argument("--token", help="a bearer token (default: AWOOOP_TOKEN, else minted)")
    show.set_defaults(handler=DeferredHandler(WORK, "show_budgets"))


def _budget_commands(verbs: argparse._SubParsersAction[Any]) -> Any:
    """The `budget` verb's sub-commands, the verb added when no module registered it."""
    parser = verbs.choices.get("budget") or verbs.add_parser(
        "budget", help="a tenant's budget: its kill switch, usage and limits"
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = action
            break
    else:
        found = parser.add_subparsers(dest="what", required=True)
    return found
