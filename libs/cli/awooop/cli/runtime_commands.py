"""`awooop runs cancel RUN_ID --reason TEXT`, `awooop budget reset PROJECT --reason TEXT`
and `awooop budget ledger PROJECT`: the runtime's run and budget commands, as an
operator sends them, and the live ledger.

`cancel` joins the sub-commands of `runs` (`runs list | show`), `reset` those of
`budget`, whichever module registers the verb first. The token is `--token`, else
`AWOOOP_TOKEN`, else a development operator token.
"""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.runtime_client import RuntimeClient, RuntimeCommandError, operator_token

__all__ = ["RuntimeCommandError", "register"]


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    runs = _subcommands(verbs, "runs", "list runs, show one, or cancel one")
    cancel = runs.add_parser("cancel", help="cancel an active run (runtime API)")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", required=True, help="why, kept on the run's event")
    _auth_options(cancel)
    cancel.set_defaults(handler=cancel_run)
    runs.metavar = "|".join(runs.choices)

    budget = _subcommands(verbs, "budget", "a tenant's budget: reset its kill switch")
    reset = budget.add_parser("reset", help="reset a tripped kill switch (runtime API)")
    reset.add_argument("project", metavar="PROJECT")
    reset.add_argument("--reason", required=True, help="why, kept on the reset event")
    _auth_options(reset)
    reset.set_defaults(handler=reset_budget)
    ledger = budget.add_parser(
        "ledger", help="the live ledger: limits, reserved and settled now (runtime API)"
    )
    ledger.add_argument("project", metavar="PROJECT")
    _auth_options(ledger)
    ledger.set_defaults(handler=show_ledger)
    budget.metavar = "|".join(budget.choices)


def _subcommands(verbs: argparse._SubParsersAction[Any], verb: str, summary: str) -> Any:
    """The sub-commands of `verb`, whichever module registered it first (the verb is
    added here when none did)."""
    parser = verbs.choices.get(verb) or verbs.add_parser(verb, help=summary)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="what", required=True)


def _auth_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="subject",
        metavar="SUBJECT",
        help="subject of the development token (default operator:<login name>)",
    )
    parser.add_argument("--token", help="a bearer token (default: AWOOOP_TOKEN, else minted)")


def cancel_run(args: argparse.Namespace) -> int:
    with RuntimeClient(operator_token(args.token, args.subject)) as client:
        answer = client.post(f"/v1/runs/{args.run_id}/cancel", {"reason": args.reason})
    print(describe_cancel(answer))
    return 0


def describe_cancel(answer: dict[str, Any]) -> str:
    """One line saying what a cancel did, from the API's answer."""
    head = f"run {answer['run_id']} of project {answer['project_id']}"
    return f"{head} was cancelled already" if answer.get("already") else f"{head} cancelled"


def reset_budget(args: argparse.Namespace) -> int:
    with RuntimeClient(operator_token(args.token, args.subject)) as client:
        answer = client.post(f"/v1/budgets/{args.project}/reset", {"reason": args.reason})
    print(describe_reset(answer))
    return 0


def describe_reset(answer: dict[str, Any]) -> str:
    """One line saying what a reset did, from the API's answer."""
    project = answer["project_id"]
    if answer.get("was_killed"):
        return f"project {project}: kill switch reset; runs may start again"
    return f"project {project}: the kill switch was not tripped; nothing to reset"


def show_ledger(args: argparse.Namespace) -> int:
    with RuntimeClient(operator_token(args.token, args.subject)) as client:
        answer = client.get(f"/v1/budgets/{args.project}/ledger")
    print("\n".join(describe_ledger(answer)))
    return 0


def describe_ledger(answer: dict[str, Any]) -> list[str]:
    """The ledger's lines: the kill switch, then one line per scope."""
    state = "TRIPPED" if answer["killed"] else "off"
    lines = [f"project {answer['project_id']}: kill switch {state}"]
    for scope in answer["scopes"]:
        limits = ", ".join(
            f"{what} {scope[f'settled_{what}']} settled + {scope[f'reserved_{what}']} "
            f"reserved of {scope[f'limit_{what}']}"
            for what in ("tokens", "cost")
            if scope[f"limit_{what}"] is not None
        )
        tripped = "  (tripped)" if scope["tripped"] else ""
        lines.append(
            f"  {scope['scope']} {scope['subject']} {scope['period']} "
            f"{scope['period_key'] or '-'}: {limits}{tripped}"
        )
    if not answer["scopes"]:
        lines.append("  nothing reserved or settled yet")
    return lines
