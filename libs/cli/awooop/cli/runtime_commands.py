"""`awooop runs cancel RUN_ID --reason TEXT`, `awooop budget reset PROJECT --reason TEXT`
and `awooop budget ledger PROJECT`: the runtime's run and budget commands, as an
operator sends them, and the live ledger (their arguments:
`awooop.cli.verbs.runtime_commands`).

The token is `--token`, else `AWOOOP_TOKEN`, else a development operator token.
"""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.runtime_client import RuntimeClient, RuntimeCommandError, operator_token

__all__ = ["RuntimeCommandError"]


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
