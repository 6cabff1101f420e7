"""The inbox: `(handler, event_id)` rows that make a consumer idempotent.

One statement per batch names the records not seen before. The table is
range-partitioned by week on the UUIDv7 `event_id`, with a default partition
for ids outside every made week. Maintenance (at start, then every interval
while the service runs: `maintain_forever`) makes the weeks from the horizon
to `WEEKS_AHEAD` ahead, drops partitions wholly past the horizon (14 days,
beyond which aggregates are idempotent by their own ids), and recovers a
default partition holding rows of a week being made: those rows move into
the new partition in the same transaction, so making it never fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from uuid import UUID

import asyncpg

from awooop.infra.logging import get_logger
from awooop.infra.postgres.errors import is_database_outage

log = get_logger(__name__)

HORIZON = dt.timedelta(days=14)
WEEKS_AHEAD = 4
"""Weeks made ahead of now: a service may stay up this long between maintenance runs."""

LOCK_TIMEOUT = "2s"
"""How long maintenance waits for the inbox's lock. A waiting lock holds back the writers
queued behind it, so it gives up soon and tries again at the next run."""

_PARTITION = r"^inbox_[0-9]{8}$"


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


def partition_name(week_start: dt.datetime) -> str:
    """The name of the weekly partition starting at `week_start` (a Monday, UTC)."""
    return f"inbox_{week_start:%Y%m%d}"


async def maintain_partitions(
    conn: asyncpg.Connection,
    schema: str,
    now: dt.datetime,
    weeks_ahead: int = WEEKS_AHEAD,
) -> None:
    """Make the weeks from the horizon to `weeks_ahead` past `now`; drop those past it.

    `conn` must not be inside a transaction: each partition is made or dropped in
    its own short one. Safe to run from several processes at once.
    """
    cutoff = _week_start(now - HORIZON)
    last = _week_start(now) + dt.timedelta(weeks=weeks_ahead)
    week = cutoff
    while week <= last:
        await _ensure_partition(conn, schema, week)
        week += dt.timedelta(weeks=1)
    await _drop_past(conn, schema, cutoff)


async def _exists(conn: asyncpg.Connection, schema: str, name: str) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM pg_tables WHERE schemaname = $1 AND tablename = $2", schema, name
    )
    return bool(found)


async def _ensure_partition(conn: asyncpg.Connection, schema: str, lower: dt.datetime) -> None:
    name = partition_name(lower)
    if await _exists(conn, schema, name):
        return
    parent, table = f'"{schema}".inbox', f'"{schema}"."{name}"'
    low, high = uuid7_floor(lower), uuid7_floor(lower + dt.timedelta(weeks=1))
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # EXCLUSIVE on the parent (and with it every partition) lets reads go on,
        # waits for the writers in flight and holds back new ones until commit:
        # otherwise a row could reach the default partition between the move and
        # the attach, and the attach would refuse (or the insert would fail).
        await conn.execute(f"LOCK TABLE {parent} IN EXCLUSIVE MODE")
        if await _exists(conn, schema, name):
            return  # another process made it while this one waited
        await conn.execute(f"CREATE TABLE {table} (LIKE {parent} INCLUDING ALL)")
        moved = await conn.execute(
            f'WITH moved AS (DELETE FROM "{schema}".inbox_default '
            f"WHERE event_id >= $1 AND event_id < $2 RETURNING handler, event_id) "
            f"INSERT INTO {table} (handler, event_id) SELECT handler, event_id FROM moved",
            low,
            high,
        )
        await conn.execute(
            f"ALTER TABLE {parent} ATTACH PARTITION {table} FOR VALUES FROM ('{low}') TO ('{high}')"
        )
    rows = int(moved.rsplit(" ", 1)[-1])
    log.info("inbox_partition_made", schema=schema, partition=name, moved_from_default=rows)


async def _drop_past(conn: asyncpg.Connection, schema: str, cutoff: dt.datetime) -> None:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename ~ $2",
        schema,
        _PARTITION,
    )
    for row in rows:
        name = row["tablename"]
        lower = dt.datetime.strptime(name[6:], "%Y%m%d").replace(tzinfo=dt.UTC)
        if lower + dt.timedelta(weeks=1) > cutoff:
            continue
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')
        log.info("inbox_partition_dropped", schema=schema, partition=name)
    await conn.execute(
        f'DELETE FROM "{schema}".inbox_default WHERE event_id < $1', uuid7_floor(cutoff)
    )


async def maintain_forever(
    pool: asyncpg.Pool,
    schema: str,
    clock: Callable[[], dt.datetime],
    interval: float,
    weeks_ahead: int = WEEKS_AHEAD,
) -> None:
    """Run `maintain_partitions` every `interval` seconds until cancelled.

    An outage (database down, lock not granted in time) is logged and retried at
    the next run; any other error escapes, so the service learns of it.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            async with pool.acquire() as conn:
                await maintain_partitions(conn, schema, clock(), weeks_ahead)
        except Exception as error:
            if not is_database_outage(error):
                raise
            log.warning("inbox_maintenance_failed", error=repr(error), retry_in=interval)
