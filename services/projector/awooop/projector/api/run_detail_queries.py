"""A run's LLM steps, for its detail beside its row and timeline (its channel events and
outbound messages are read by channel_queries.py). The statement names `project_id`, on
top of the row-level-security policy that limits the transaction to that tenant."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_STEPS = text(
    "SELECT number, model, tokens_in, tokens_out, cost, latency_ms, schema_retries, "
    "reserved_tokens, outcome, event_id, occurred_at FROM run_steps "
    "WHERE project_id = :p AND run_id = :id ORDER BY number"
)


async def get_steps(
    session: AsyncSession, project_id: str, run_id: uuid.UUID
) -> list[dict[str, Any]]:
    result = await session.execute(_STEPS, {"p": project_id, "id": run_id})
    rows = [dict(row) for row in result.mappings()]
    for row in rows:
        row["cost"] = format(row["cost"], "f")
    return rows
