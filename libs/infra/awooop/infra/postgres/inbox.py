"""The inbox: `(handler, event_id)` rows that make a consumer idempotent.

One statement per batch names the records not seen before. The table is
range-partitioned by week on the UUIDv7 `event_id`; partitions older than
the horizon are dropped, beyond which aggregates are idempotent by their
own ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from uuid import UUID

import asyncpg

HORIZON = dt.timedelta(days=14)


async def claim(conn: asyncpg.Connection, handler: str, event_ids: Sequence[UUID]) -> set[UUID]:
    """Record `event_ids` for `handler`; return those that were new (one round trip)."""
    if not event_ids:
        return set()
    rows = await conn.fetch(
        "INSERT INTO inbox (handler, event_id) SELECT $1, unnest($2::uuid[]) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        handler,
        list(event_ids),
    )
    return {row["event_id"] for row in rows}


def uuid7_floor(moment: dt.datetime) -> UUID:
    """The smallest UUIDv7 of the millisecond `moment`."""
    millis = int(moment.timestamp() * 1000)
    return UUID(int=millis << 80)


def _week_start(moment: dt.datetime) -> dt.datetime:
    day = moment.astimezone(dt.UTC).date()
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)


async def maintain_partitions(
    conn: asyncpg.Connection,
    schema: str,
    now: dt.datetime,
    weeks_ahead: int = 2,
) -> None:
    """Create this week's and the next weeks' partitions; drop those past the horizon."""
    start = _week_start(now)
    for week in range(-1, weeks_ahead + 1):
        lower = start + dt.timedelta(weeks=week)
        upper = lower + dt.timedelta(weeks=1)
        name = f"inbox_{lower:%Y%m%d}"
        exists = await conn.fetchval(
            "SELECT true FROM pg_tables WHERE schemaname = $1 AND tablename = $2", schema, name
        )
        if exists:
            continue
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}"."{name}" PARTITION OF "{schema}".inbox '
            f"FOR VALUES FROM ('{uuid7_floor(lower)}') TO ('{uuid7_floor(upper)}')"
        )
    cutoff = _week_start(now - HORIZON)
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename ~ '^inbox_[0-9]{8}$'",
        schema,
    )
    for row in rows:
        lower = dt.datetime.strptime(row["tablename"][6:], "%Y%m%d").replace(tzinfo=dt.UTC)
        if lower + dt.timedelta(weeks=1) <= cutoff:
            await conn.execute(f'DROP TABLE "{schema}"."{row["tablename"]}"')
    await conn.execute(
        f'DELETE FROM "{schema}".inbox_default WHERE event_id < $1', uuid7_floor(cutoff)
    )
