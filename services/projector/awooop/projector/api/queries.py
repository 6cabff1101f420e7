"""Read-model queries of the API, and its opaque keyset cursor.

Every query names `project_id` explicitly (so the indexes that lead with it
serve it) on top of the row-level-security policy that already limits the
transaction to that tenant.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_SUMMARY_COLUMNS = (
    "run_id, project_id, state, agent_id, platform_subject_id, chat_id, channel_type, mode, "
    "started_at, completed_at, suppressed, error_code"
)
_RUN_COLUMNS = f"{_SUMMARY_COLUMNS}, revision, trigger_text, reply, last_stream_seq"

_LIST_FIRST = text(
    f"SELECT {_SUMMARY_COLUMNS} FROM runs "
    "WHERE project_id = :p AND started_at IS NOT NULL "
    "ORDER BY started_at DESC, run_id DESC LIMIT :n"
)
_LIST_AFTER = text(
    f"SELECT {_SUMMARY_COLUMNS} FROM runs "
    "WHERE project_id = :p AND started_at IS NOT NULL AND (started_at, run_id) < (:at, :id) "
    "ORDER BY started_at DESC, run_id DESC LIMIT :n"
)
_ONE_RUN = text(f"SELECT {_RUN_COLUMNS} FROM runs WHERE project_id = :p AND run_id = :id")
_TIMELINE = text(
    "SELECT event_id, occurred_at, event_type, stream_type, stream_id, stream_seq, actor, summary "
    "FROM timeline WHERE project_id = :p AND run_id = :id ORDER BY occurred_at, event_id"
)


class InvalidCursor(ValueError):
    """A `cursor` this API did not hand out."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last run of a page: the next page starts strictly after it."""

    started_at: datetime
    run_id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.started_at.isoformat()}|{self.run_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            at, _, run_id = raw.partition("|")
            started_at = datetime.fromisoformat(at)
            if started_at.tzinfo is None:
                raise ValueError("naive timestamp")
            return cls(started_at, uuid.UUID(run_id))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidCursor("cursor is malformed: pass the `next` value of a page") from None


async def list_runs(
    session: AsyncSession, project_id: str, limit: int, after: Cursor | None
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """One page, newest first, and the cursor of the next page (None on the last one)."""
    params: dict[str, Any] = {"p": project_id, "n": limit + 1}
    if after is None:
        result = await session.execute(_LIST_FIRST, params)
    else:
        params |= {"at": after.started_at, "id": after.run_id}
        result = await session.execute(_LIST_AFTER, params)
    rows = [dict(row) for row in result.mappings()]
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, Cursor(page[-1]["started_at"], page[-1]["run_id"])


async def get_run(
    session: AsyncSession, project_id: str, run_id: uuid.UUID
) -> dict[str, Any] | None:
    row = (await session.execute(_ONE_RUN, {"p": project_id, "id": run_id})).mappings().first()
    return dict(row) if row is not None else None


async def get_timeline(
    session: AsyncSession, project_id: str, run_id: uuid.UUID
) -> list[dict[str, Any]]:
    result = await session.execute(_TIMELINE, {"p": project_id, "id": run_id})
    rows = [dict(row) for row in result.mappings()]
    for row in rows:
        if isinstance(row["summary"], str):
            row["summary"] = json.loads(row["summary"])
    return rows
