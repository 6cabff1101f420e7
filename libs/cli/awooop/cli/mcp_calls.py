"""`awooop mcp-calls list`: a project's recent tool calls and what the gateway decided, from
the query API (`GET /v1/mcp-calls`), one line each under a header.

Arguments are never printed (the API shows only their redacted display form, and a table
line has no room for it); the reason is, cut short. A refusal or an unreachable API is
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from awooop.cli import queries
from awooop.cli.send import DEFAULT_PROJECT
from awooop.projector.domain.mcp_calls import MCP_CALL_STATUSES

REASON_CHARS = 60
CALL_WIDTH = 38
"""A run id and the call's number: what the runtime names its calls."""
HEADER = (
    f"{'AT':<23}  {'STATUS':<17} {'TOOL':<24} {'GATE':<4} {'CODE':<18} {'LATENCY':>9}  "
    f"{'CALL':<{CALL_WIDTH}}  REASON"
)


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
    listing.set_defaults(handler=list_mcp_calls)


def _latency(call: dict[str, Any]) -> str:
    latency = call["latency_ms"]
    return "-" if latency is None else f"{latency:.0f} ms" if latency >= 10 else f"{latency:.1f} ms"


def _detail(call: dict[str, Any]) -> str:
    said = " ".join((call["reason"] or "").split())
    if len(said) > REASON_CHARS:
        said = said[: REASON_CHARS - 1] + "…"
    if call["retry_after"] is not None:
        said += f" (retry after {call['retry_after']:g} s)"
    if call["would_need"]:
        said += f" (would need {call['would_need']})"
    if call["transient"] is not None:
        said += " (transient)" if call["transient"] else " (permanent)"
    return said.strip()


def format_mcp_call(call: dict[str, Any]) -> str:
    """One call on one line: when, status, tool, gate, code, latency, call id, why."""
    at = (call["requested_at"] or call["decided_at"] or "")[:23]
    gate = "-" if call["gate"] is None else str(call["gate"])
    line = (
        f"{at:<23}  {call['status']:<17} {call['tool'] or '?':<24} {gate:<4} "
        f"{call['code'] or '-':<18} {_latency(call):>9}  {call['call_id']:<{CALL_WIDTH}}"
    )
    detail = _detail(call)
    return f"{line}  {detail}" if detail else line.rstrip()


def list_mcp_calls(args: argparse.Namespace) -> int:
    chosen = {
        "run_id": args.run,
        "status": args.status,
        "tool": args.tool,
        "gate": args.gate,
        "code": args.code,
    }
    params: dict[str, Any] = {"limit": args.limit} | {
        k: v for k, v in chosen.items() if v is not None
    }
    client = queries.QueryClient(args.project)
    try:
        calls = client.items("/v1/mcp-calls", params)
    except queries.QueryError as error:
        print(f"awooop: error: {error}", file=sys.stderr)
        return 2
    finally:
        client.close()
    if not calls:
        print(f"no tool calls in project {args.project} match")
        return 0
    print(HEADER)
    for call in calls:
        print(format_mcp_call(call))
    return 0
