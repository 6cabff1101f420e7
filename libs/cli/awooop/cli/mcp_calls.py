"""`awooop mcp-calls list`: a project's recent tool calls and what the gateway decided, from
the query API (`GET /v1/mcp-calls`), one line each under a header.

Arguments are never printed (the API shows only their redacted display form, and a table
line has no room for it); the reason is, cut short. A refusal or an unreachable API is
one line on stderr and exit status 2. The verb's options are declared in
`awooop.cli.verbs.mcp_calls`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from awooop.cli import queries

REASON_CHARS = 60
CALL_WIDTH = 38
"""A run id and the call's number: what the runtime names its calls."""
HEADER = (
    f"{'AT':<23}  {'STATUS':<17} {'TOOL':<24} {'GATE':<4} {'CODE':<18} {'LATENCY':>9}  "
    f"{'CALL':<{CALL_WIDTH}}  REASON"
)


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
