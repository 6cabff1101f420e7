"""Channel read-model queries of the API: the recent channel events, and a run's inbound
events and outbound messages.

Like the run queries, every statement names `project_id` on top of the
row-level-security policy that already limits the transaction to that tenant. Rows whose
ingress event is not projected yet (only the runtime's word on a message is known) are
not shown: they name no channel, no person and no time.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_EVENT_COLUMNS = (
    "event_id, kind, outcome, channel_type, provider_event_id, platform_subject_id, chat_id, "
    "thread_id, message_id, display_text, reason, code, record_key, duplicate_of, "
    "record_partition, record_offset, received_at, occurred_at, run_id, queued_on, busy_with"
)
_OF_RUN = text(
    f"SELECT {_EVENT_COLUMNS} FROM channel_events WHERE project_id = :p AND kind IS NOT NULL "
    "AND (event_id = :id OR queued_on = :id OR busy_with = :id OR duplicate_of = :id) "
    "ORDER BY occurred_at, event_id"
)
_OUTBOUND = text(
    "SELECT event_id, kind, channel_type, chat_id, thread_id, reply_to, text, "
    "coalesce(button_labels, '{}') AS button_labels, edit_of, deliver_before, occurred_at, "
    "status, coalesce(provider_message_ids, '{}') AS provider_message_ids, attempts, code, "
    "reason, reported_at FROM outbound_messages WHERE project_id = :p AND run_id = :id "
    "ORDER BY occurred_at NULLS LAST, event_id"
)


def like_prefix(prefix: str) -> str:
    """A `LIKE … ESCAPE '\\'` pattern matching the strings that start with `prefix`: its
    `%`, `_` and `\\` match only themselves."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


async def list_channel_events(
    session: AsyncSession,
    project_id: str,
    *,
    channel_type: str | None,
    provider_event_id_prefix: str | None,
    outcome: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The newest channel events matching every filter given, newest first."""
    # Only the chosen filters are written, so each combination gets its own plan and
    # the index that leads with its column (outcome, provider event id) can serve it.
    where = ["project_id = :p", "kind IS NOT NULL"]
    params: dict[str, Any] = {"p": project_id, "n": limit}
    if channel_type is not None:
        where.append("channel_type = :channel")
        params["channel"] = channel_type
    if outcome is not None:
        where.append("outcome = :outcome")
        params["outcome"] = outcome
    if provider_event_id_prefix is not None:
        where.append("provider_event_id LIKE :prefix ESCAPE '\\'")
        params["prefix"] = like_prefix(provider_event_id_prefix)
    statement = text(
        f"SELECT {_EVENT_COLUMNS} FROM channel_events WHERE {' AND '.join(where)} "
        "ORDER BY occurred_at DESC, event_id DESC LIMIT :n"
    )
    return [dict(row) for row in (await session.execute(statement, params)).mappings()]


async def get_inbound(
    session: AsyncSession, project_id: str, run_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The run's message, the messages queued on or refused by it, and repeats of its
    message, oldest first."""
    result = await session.execute(_OF_RUN, {"p": project_id, "id": run_id})
    return [dict(row) for row in result.mappings()]


async def get_outbound(
    session: AsyncSession, project_id: str, run_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The messages the run asked to send, with their delivery, in the order asked."""
    result = await session.execute(_OUTBOUND, {"p": project_id, "id": run_id})
    return [dict(row) for row in result.mappings()]
