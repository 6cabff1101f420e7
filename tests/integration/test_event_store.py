"""The event store: lock-then-append, conflicts, outbox, inbox — on a real Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest

from awooop.contracts.envelope import new_event_id
from awooop.infra.postgres import event_store, inbox
from awooop.infra.postgres.errors import ConflictBoundExceeded, EventTooLarge
from awooop.infra.postgres.event_store import NewEvent
from support.infra import StackUrls, unique
from support.schemas import service_schema

pytestmark = pytest.mark.integration


def _event(stream_id: str, seq: int, body: bytes = b"{}") -> NewEvent:
    return NewEvent(
        event_id=new_event_id(),
        stream_type="counter",
        stream_id=stream_id,
        stream_seq=seq,
        topic="awooop.run.events.v1",
        key=stream_id.encode(),
        headers=[("event_type", b"counter.incremented")],
        data=body,
    )


@pytest.fixture
async def pool(stack_urls: StackUrls) -> asyncpg.Pool:
    pool = await service_schema(stack_urls.database, unique("es_"))
    yield pool
    await pool.close()


async def test_append_writes_events_outbox_and_stream_version(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        positions = await event_store.append(conn, [_event("s-1", 1), _event("s-1", 2)])
    assert positions == sorted(positions)
    assert await pool.fetchval("SELECT version FROM streams WHERE stream_id = 's-1'") == 2
    outbox = [r["position"] for r in await pool.fetch("SELECT position FROM outbox")]
    assert outbox == positions
    stored = await pool.fetch("SELECT headers::text, data FROM events ORDER BY position")
    assert stored[0]["data"] == b"{}"
    assert event_store.decode_headers(stored[0]["headers"]) == [
        ("event_type", b"counter.incremented")
    ]


async def test_two_writers_racing_one_wins_the_other_decides_again(pool: asyncpg.Pool) -> None:
    """Both read version 0 and try to append seq 1; exactly one append wins, the loser
    reloads, sees the winner's event and decides again on top of it."""
    both_loaded = asyncio.Barrier(2)
    decisions: dict[str, list[int]] = {"a": [], "b": []}

    def writer(name: str):
        async def write(conn: asyncpg.Connection) -> int:
            versions = await event_store.lock_streams(conn, ["counter-1"])
            seen = len(await event_store.load_stream(conn, "counter-1"))
            decisions[name].append(seen)
            if len(decisions[name]) == 1:
                await both_loaded.wait()  # both decide on the same, empty, state
            await event_store.append(conn, [_event("counter-1", versions["counter-1"] + 1)])
            return versions["counter-1"] + 1

        return write

    results = await asyncio.gather(
        event_store.with_conflict_retries(pool, writer("a")),
        event_store.with_conflict_retries(pool, writer("b")),
    )
    assert sorted(results) == [1, 2]
    attempts = sorted(len(d) for d in decisions.values())
    assert attempts == [1, 2], decisions  # the loser decided twice
    loser = next(d for d in decisions.values() if len(d) == 2)
    assert loser == [0, 1]  # ... the second time on top of the winner's event
    async with pool.acquire() as conn:
        seqs = [e.stream_seq for e in await event_store.load_stream(conn, "counter-1")]
    assert seqs == [1, 2]


async def test_lock_streams_serialises_writers_of_an_existing_stream(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await event_store.append(conn, [_event("held", 1)])
    order: list[str] = []

    async def first() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await event_store.lock_streams(conn, ["held"])
            order.append("first-locked")
            await asyncio.sleep(0.3)
            await event_store.append(conn, [_event("held", 2)])
            order.append("first-appended")

    async def second() -> None:
        await asyncio.sleep(0.1)
        async with pool.acquire() as conn, conn.transaction():
            versions = await event_store.lock_streams(conn, ["held"])
            order.append(f"second-saw-{versions['held']}")
            await event_store.append(conn, [_event("held", versions["held"] + 1)])

    await asyncio.gather(first(), second())
    assert order == ["first-locked", "first-appended", "second-saw-2"]


async def test_conflicts_past_the_bound_are_an_outage(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await event_store.append(conn, [_event("stuck", 1)])
    calls = 0

    async def always_stale(conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        await event_store.append(conn, [_event("stuck", 1)])

    with pytest.raises(ConflictBoundExceeded):
        await event_store.with_conflict_retries(pool, always_stale, max_retries=3)
    assert calls == 4


async def test_an_event_over_the_record_limit_is_refused(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(EventTooLarge, match="over the"):
            await event_store.append(conn, [_event("big", 1, b"x" * (1024 * 1024 + 1))])


async def test_inbox_names_new_ids_once(pool: asyncpg.Pool) -> None:
    ids = [new_event_id() for _ in range(5)]
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, "h", ids[:3]) == set(ids[:3])
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, "h", ids) == set(ids[3:])
        assert await inbox.claim(conn, "other", ids[:1]) == {ids[0]}


async def test_inbox_partitions_are_made_ahead_and_dropped_past_the_horizon(
    pool: asyncpg.Pool,
) -> None:
    schema = await pool.fetchval("SELECT current_schema()")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(weeks=6)
    async with pool.acquire() as conn:
        await inbox.maintain_partitions(conn, schema, later)
    names = {
        r["tablename"]
        for r in await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'inbox_2%'",
            schema,
        )
    }
    this_week = inbox._week_start(dt.datetime.now(dt.UTC))
    assert f"inbox_{this_week:%Y%m%d}" not in names  # past the 14-day horizon by then
    assert f"inbox_{inbox._week_start(later):%Y%m%d}" in names
    old_id = uuid.UUID(int=(inbox.uuid7_floor(this_week).int | (7 << 76)))
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, "h", [old_id]) == {old_id}  # lands in the default
