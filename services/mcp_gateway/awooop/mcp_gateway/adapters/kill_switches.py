"""The `tenant_kills` table: the kill switches gate 4 reads, folded from the budget events.

Read once per batch for the batch's projects; written once per batch (one upsert for
the projects killed, one delete for the projects reset), whatever the batch held.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class KillChange:
    """The last kill-switch event of a project in a batch."""

    killed: bool
    at: dt.datetime
    event_id: uuid.UUID


async def killed(conn: asyncpg.Connection, projects: Collection[str]) -> set[str]:
    """Which of `projects` have their kill switch tripped."""
    if not projects:
        return set()
    rows = await conn.fetch(
        "SELECT project_id FROM tenant_kills WHERE project_id = ANY($1::text[])", list(projects)
    )
    return {row["project_id"] for row in rows}


async def apply(conn: asyncpg.Connection, changes: Mapping[str, KillChange]) -> None:
    """Record the batch's last kill-switch change per project."""
    kills = {p: c for p, c in changes.items() if c.killed}
    resets = [p for p, c in changes.items() if not c.killed]
    if kills:
        await conn.execute(
            """
            INSERT INTO tenant_kills (project_id, killed_at, event_id)
            SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::uuid[])
            ON CONFLICT (project_id) DO UPDATE
                SET killed_at = excluded.killed_at, event_id = excluded.event_id
            """,
            list(kills),
            [c.at for c in kills.values()],
            [c.event_id for c in kills.values()],
        )
    if resets:
        await conn.execute("DELETE FROM tenant_kills WHERE project_id = ANY($1::text[])", resets)
