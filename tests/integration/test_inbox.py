"""Inbox partitions over months of uptime, on a real Postgres: made weeks ahead, dropped
past the horizon, and a default partition holding rows recovered without a failure."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid

import asyncpg
import pytest

from awooop.infra.postgres import inbox
from support.infra import StackUrls, unique
from support.pipeline import wait_for
from support.schemas import service_schema

pytestmark = pytest.mark.integration

WEEK = dt.timedelta(weeks=1)


def _uuid7_at(moment: dt.datetime) -> uuid.UUID:
    """A random UUIDv7 of the millisecond `moment`."""
    version_and_variant = (7 << 76) | (2 << 62)
    random_bits = secrets.randbits(12) << 64 | secrets.randbits(62)
    return uuid.UUID(int=inbox.uuid7_floor(moment).int | version_and_variant | random_bits)


@pytest.fixture
async def schema_pool(stack_urls: StackUrls) -> tuple[asyncpg.Pool, str]:
    schema = unique("inbox_")
    pool = await service_schema(stack_urls.database, schema)  # maintained once, at "now"
    yield pool, schema
    await pool.close()


async def _where(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await pool.fetch(
        "SELECT event_id, tableoid::regclass::text AS part FROM inbox "
        "WHERE event_id = ANY($1::uuid[])",
        ids,
    )
    return {r["event_id"]: r["part"].rsplit(".", 1)[-1].strip('"') for r in rows}


async def _partitions(pool: asyncpg.Pool, schema: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE p.relname = 'inbox' AND n.nspname = $1",
        schema,
    )
    return {r["relname"] for r in rows}


async def test_rows_five_weeks_ahead_in_the_default_move_to_their_partition_on_a_restart(
    schema_pool: tuple[asyncpg.Pool, str],
) -> None:
    """Acceptance. Breaks caught: maintenance that fails (`CREATE TABLE … PARTITION OF`
    refuses while the default holds matching rows) and so a start that fails; rows lost
    or no longer de-duplicated by the move; partitions kept past the horizon."""
    pool, schema = schema_pool
    now = dt.datetime.now(dt.UTC)
    this_week = inbox._week_start(now)
    # Inside one week whatever the time of day: `now + 5 weeks + n minutes` could cross
    # into the next week late on a Sunday.
    week_ahead = inbox._week_start(now + 5 * WEEK)
    ahead = [_uuid7_at(week_ahead + dt.timedelta(hours=1, minutes=n)) for n in range(20)]
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, "h", ahead) == set(ahead)
    assert set((await _where(pool, ahead)).values()) == {"inbox_default"}

    # Two weeks on, the service restarts: its start-up maintenance reaches five weeks
    # past the original now and must make the partition the default holds rows for.
    later = now + 2 * WEEK
    async with pool.acquire() as conn:
        await inbox.maintain_partitions(conn, schema, later)

    target = inbox.partition_name(inbox._week_start(now + 5 * WEEK))
    assert set((await _where(pool, ahead)).values()) == {target}
    assert await pool.fetchval("SELECT count(*) FROM inbox_default") == 0
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, "h", ahead) == set()  # still seen, once each
    assert await pool.fetchval("SELECT count(*) FROM inbox") == len(ahead)

    partitions = await _partitions(pool, schema)
    cutoff = inbox._week_start(later - inbox.HORIZON)
    weekly = {p for p in partitions if p != "inbox_default"}
    expected = {inbox.partition_name(cutoff + n * WEEK) for n in range(3 + inbox.WEEKS_AHEAD)}
    assert weekly == expected
    assert inbox.partition_name(this_week - WEEK) not in partitions  # wholly past the horizon
    assert "inbox_default" in partitions


async def test_the_move_is_safe_while_writers_claim_ids_of_the_week_being_made(
    schema_pool: tuple[asyncpg.Pool, str],
) -> None:
    """Break caught: moving rows out of the default without holding back writers, so a
    row inserted mid-move lands in the default (the attach then refuses) or an insert
    fails with a partition-constraint error."""
    pool, schema = schema_pool
    now = dt.datetime.now(dt.UTC)
    week = inbox._week_start(now + 6 * WEEK)
    seeded = [_uuid7_at(week + dt.timedelta(hours=n)) for n in range(50)]
    async with pool.acquire() as conn, conn.transaction():
        await inbox.claim(conn, "h", seeded)
    claimed: list[uuid.UUID] = []
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        while not stop.is_set():
            ids = [_uuid7_at(week + dt.timedelta(minutes=m, seconds=n)) for m in range(20)]
            async with pool.acquire() as conn, conn.transaction():
                assert await inbox.claim(conn, f"w{n}", ids) == set(ids)
            claimed.extend(ids)
            await asyncio.sleep(0)

    writers = [asyncio.create_task(writer(n)) for n in range(3)]
    try:
        # Writers are in full flow before the move starts, and keep flowing after it.
        await wait_for(lambda: len(claimed) >= 100, message="writers flowing")
        async with pool.acquire() as conn:
            await inbox.maintain_partitions(conn, schema, now + 2 * WEEK)
        written_during = len(claimed)
        await wait_for(lambda: len(claimed) >= written_during + 100, message="writers after")
    finally:
        stop.set()
        results = await asyncio.gather(*writers, return_exceptions=True)
    assert results == [None, None, None], results

    every = seeded + claimed
    where = await _where(pool, every)
    assert len(where) == len(every)
    assert set(where.values()) == {inbox.partition_name(week)}
    assert await pool.fetchval("SELECT count(*) FROM inbox_default") == 0


async def test_maintenance_runs_on_its_interval_while_the_service_is_up(
    schema_pool: tuple[asyncpg.Pool, str],
) -> None:
    """Break caught: partitions made only at start, so a long-running process fills the
    default partition once it passes the weeks made then."""
    pool, schema = schema_pool
    now = dt.datetime.now(dt.UTC)
    moments = [now + n * WEEK for n in range(1, 4)]
    calls: list[dt.datetime] = []

    def clock() -> dt.datetime:
        calls.append(moments[min(len(calls), len(moments) - 1)])
        return calls[-1]

    task = asyncio.create_task(inbox.maintain_forever(pool, schema, clock, interval=0.01))
    far = inbox.partition_name(inbox._week_start(moments[-1] + inbox.WEEKS_AHEAD * WEEK))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while far not in await _partitions(pool, schema):
            assert not task.done(), task
            assert loop.time() < deadline, "maintenance never reached three weeks on"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(calls) >= len(moments)
