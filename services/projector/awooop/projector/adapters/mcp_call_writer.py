"""The bulk path of `mcp_calls`: one merge statement, in key order, as read_model_writer.py
does.

The merge applies the fold's rules (domain/mcp_calls.py) between a staged row and the
stored one: a write-once column keeps its first non-null value, the tool the request's
once the request is known, and the decision columns are the gateway event's with the
highest `(rank of its status, decided_at, decided_event_id)`; `retries` the highest
attempt retried (`greatest` ignores nulls). Only rows that change are updated, so a
redelivered batch leaves no dead tuples.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awooop.projector.adapters.row_source import RowSource, merge_all
from awooop.projector.domain.mcp_calls import (
    DECISION_COLUMNS,
    MCP_CALL_COLUMNS,
    STATUS_RANKS,
    WRITE_ONCE_COLUMNS,
    McpCallRow,
)

MCP_CALL_ROWS = RowSource.declared(
    "mcp_calls_rows",
    "project_id text, call_id text, run_id uuid, tool text, argument_hash text, "
    "arguments jsonb, action_hash text, requested_at timestamptz, status text, gate integer, "
    "code text, reason text, retry_after double precision, would_need text, redactions jsonb, "
    "latency_ms double precision, transient boolean, revisions text[], "
    "decided_at timestamptz, decided_event_id uuid, retries integer",
)


def _rank(row: str) -> str:
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANKS.items())
    return f"CASE {row}.status {cases} END"


def _decision_key(row: str) -> str:
    return f"({_rank(row)}, {row}.decided_at, {row}.decided_event_id)"


_DECISION_WINS = (
    "(excluded.decided_event_id IS NOT NULL AND (t.decided_event_id IS NULL OR "
    f"{_decision_key('excluded')} > {_decision_key('t')}))"
)
_REQUEST_ARRIVES = "(t.requested_at IS NULL AND excluded.requested_at IS NOT NULL)"
_SETS = (
    {c: f"coalesce(t.{c}, excluded.{c})" for c in WRITE_ONCE_COLUMNS}
    | {
        "tool": f"CASE WHEN {_REQUEST_ARRIVES} THEN coalesce(excluded.tool, t.tool) "
        "ELSE coalesce(t.tool, excluded.tool) END"
    }
    | {c: f"CASE WHEN {_DECISION_WINS} THEN excluded.{c} ELSE t.{c} END" for c in DECISION_COLUMNS}
    | {"retries": "greatest(t.retries, excluded.retries)"}
)
_MORE_RETRIES = (
    "(excluded.retries IS NOT NULL AND (t.retries IS NULL OR excluded.retries > t.retries))"
)
_LISTED = ", ".join(MCP_CALL_COLUMNS)
UPSERT_MCP_CALLS = (
    f"INSERT INTO mcp_calls AS t ({_LISTED}) SELECT {_LISTED} FROM {MCP_CALL_ROWS.sql} "
    "ORDER BY project_id, call_id ON CONFLICT (project_id, call_id) DO UPDATE SET "
    + ", ".join(f"{column} = {value}" for column, value in _SETS.items())
    + " WHERE "
    + " OR ".join(
        [f"(t.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in WRITE_ONCE_COLUMNS]
        + [_DECISION_WINS, _MORE_RETRIES]
    )
)


async def write_mcp_calls(conn: asyncpg.Connection, rows: Sequence[McpCallRow]) -> None:
    """Merge one batch's `mcp_calls` rows (inside the batch transaction)."""
    await merge_all(conn, [(MCP_CALL_ROWS, rows, UPSERT_MCP_CALLS)])
