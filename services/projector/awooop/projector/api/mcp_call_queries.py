"""`mcp_calls` queries of the API: the recent tool calls, and one run's.

Like the run queries, every statement names `project_id` on top of the
row-level-security policy that already limits the transaction to that tenant.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_COLUMNS = (
    "call_id, run_id, tool, status, gate, code, reason, retry_after, would_need, "
    "argument_hash, arguments, redactions, latency_ms, transient, action_hash, revisions, "
    "requested_at, decided_at, decided_event_id, retries"
)
_NEWEST = "coalesce(requested_at, decided_at) DESC, call_id DESC"
_OF_RUN = text(
    f"SELECT {_COLUMNS} FROM mcp_calls WHERE project_id = :p AND run_id = :id "
    "ORDER BY coalesce(requested_at, decided_at), call_id"
)


@dataclass(frozen=True, slots=True)
class McpCallFilters:
    """What a listing keeps: every filter given must hold."""

    run_id: uuid.UUID | None = None
    tool: str | None = None
    status: str | None = None
    gate: int | None = None
    code: str | None = None


def _parsed(rows: Any) -> list[dict[str, Any]]:
    found = [dict(row) for row in rows.mappings()]
    for row in found:
        for column in ("arguments", "redactions"):
            if isinstance(row[column], str):
                row[column] = json.loads(row[column])
    return found


async def list_mcp_calls(
    session: AsyncSession, project_id: str, filters: McpCallFilters, limit: int
) -> list[dict[str, Any]]:
    """The newest calls matching every filter given, newest first."""
    # Only the chosen filters are written, so each combination gets its own plan and
    # the index that leads with its column (status, tool, run) can serve it.
    where = ["project_id = :p"]
    params: dict[str, Any] = {"p": project_id, "n": limit}
    for column in ("run_id", "tool", "status", "gate", "code"):
        value = getattr(filters, column)
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    statement = text(
        f"SELECT {_COLUMNS} FROM mcp_calls WHERE {' AND '.join(where)} ORDER BY {_NEWEST} LIMIT :n"
    )
    return _parsed(await session.execute(statement, params))


async def get_mcp_calls(
    session: AsyncSession, project_id: str, run_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The run's tool calls, in the order it asked for them."""
    return _parsed(await session.execute(_OF_RUN, {"p": project_id, "id": run_id}))
