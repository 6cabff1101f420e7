"""The arguments of `awooop runs cancel`, `awooop budget reset` and `awooop budget
ledger`; `awooop.cli.runtime_commands` sends them to the runtime API.

`cancel` joins the sub-commands of `runs` (`runs list | show`), `reset` those of
`budget`, whichever module registers the verb first.
"""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.verbs.deferred import DeferredHandler
from awooop.cli.verbs.options import auth_options

WORK = "awooop.cli.runtime_commands"


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    runs = _subcommands(verbs, "runs", "list runs, show one, or cancel one")
    cancel = runs.add_parser("cancel", help="cancel an active run (runtime API)")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", required=True, help="why, kept on the run's event")
    auth_options(cancel)
    cancel.set_defaults(handler=DeferredHandler(WORK, "cancel_run"))
    runs.metavar = "|".join(runs.choices)

    budget = _subcommands(verbs, "budget", "a tenant's budget: reset its kill switch")
    reset = budget.add_parser("reset", help="reset a tripped kill switch (runtime API)")
    reset.add_argument("project", metavar="PROJECT")
    reset.add_argument("--reason", required=True, help="why, kept on the reset event")
    auth_options(reset)
    reset.set_defaults(handler=DeferredHandler(WORK, "reset_budget"))
    ledger = budget.add_parser(
        "ledger", help="the live ledger: limits, reserved and settled now (runtime API)"
    )
    ledger.add_argument("project", metavar="PROJECT")
    auth_options(ledger)
    ledger.set_defaults(handler=DeferredHandler(WORK, "show_ledger"))
    budget.metavar = "|".join(budget.choices)


def _subcommands(verbs: argparse._SubParsersAction[Any], verb: str, summary: str) -> Any:
    """The sub-commands of `verb`, whichever module registered it first (the verb is
    added here when none did)."""
    parser = verbs.choices.get(verb) or verbs.add_parser(verb, help=summary)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="what", required=True)
