"""The event store: lock-then-append, conflicts, outbox, inbox — on a real Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest

from awooop.contracts.records.envelope import new_event_id
from awooop.infra.postgres import event_store, inbox
from awooop.infra.postgres.errors import ConflictBoundExceeded, EventTooLarge
from awooop.infra.postgres.event_store import NewEvent
from support.infra import StackUrls, unique
from support.lock_waits import backend_pid, wait_until_blocked
from support.pipeline import wait_for
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
    """Two writers decide on version 0 of a new stream (no row to lock yet) and both append
    seq 1, interleaved by hand: a appends first and holds its transaction open until the
    server shows b's append waiting on a's row, then a commits. b must get a conflict,
    reload, see a's event and decide again on top of it.

    Breaks caught: no unique key on `(stream_id, stream_seq)` (b never waits on a, and
    the stream ends with two seq 1), a conflict that is not retried (b's write raises),
    a retry that does not reload (b appends seq 1 again until the bound)."""
    stream = "counter-1"
    both_decided = asyncio.Barrier(2)
    a_appended, a_may_commit = asyncio.Event(), asyncio.Event()
    pids: dict[str, int] = {}
    seen: dict[str, list[int]] = {"a": [], "b": []}

    async def a(conn: asyncpg.Connection) -> int:
        versions = await event_store.lock_streams(conn, [stream])
        seen["a"].append(len(await event_store.load_stream(conn, stream)))
        pids["a"] = await backend_pid(conn)
        await both_decided.wait()
        await event_store.append(conn, [_event(stream, versions[stream] + 1)])
        a_appended.set()
        await a_may_commit.wait()
        return versions[stream] + 1

    async def b(conn: asyncpg.Connection) -> int:
        versions = await event_store.lock_streams(conn, [stream])
        seen["b"].append(len(await event_store.load_stream(conn, stream)))
        if len(seen["b"]) == 1:
            pids["b"] = await backend_pid(conn)
            await both_decided.wait()  # both decided on the same, empty, state
            await a_appended.wait()
        await event_store.append(conn, [_event(stream, versions[stream] + 1)])
        return versions[stream] + 1

    observer = await pool.acquire()  # before the writers, so it is neither of theirs
    writers = [
        asyncio.create_task(event_store.with_conflict_retries(pool, write)) for write in (a, b)
    ]
    try:
        await a_appended.wait()
        await wait_until_blocked(observer, pids["b"], by=pids["a"])
        assert not writers[1].done()
        a_may_commit.set()
        assert await writers[0] == 1
        assert await writers[1] == 2
    finally:
        a_may_commit.set()
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
        await pool.release(observer)
    assert seen == {"a": [0], "b": [0, 1]}  # b decided twice, the second time on a's event
    async with pool.acquire() as conn:
        seqs = [e.stream_seq for e in await event_store.load_stream(conn, stream)]
    assert seqs == [1, 2]


async def test_lock_streams_serialises_writers_of_an_existing_stream(pool: asyncpg.Pool) -> None:
    """The first writer locks an existing stream and holds the lock; the second writer's
    `lock_streams` must wait on it (seen in `pg_blocking_pids`, not assumed after a
    sleep), and once the first commits it must read the first's version.

    Break caught: `lock_streams` without its row lock (`FOR UPDATE`). The second writer
    then never waits, reads the old version and appends behind the first one's back."""
    async with pool.acquire() as conn, conn.transaction():
        await event_store.append(conn, [_event("held", 1)])
    first_locked, first_may_append = asyncio.Event(), asyncio.Event()
    pids: dict[str, int] = {}
    order: list[str] = []

    async def first() -> None:
        async with pool.acquire() as conn, conn.transaction():
            pids["first"] = await backend_pid(conn)
            versions = await event_store.lock_streams(conn, ["held"])
            order.append(f"first-saw-{versions['held']}")
            first_locked.set()
            await first_may_append.wait()
            await event_store.append(conn, [_event("held", versions["held"] + 1)])
            order.append("first-appended")

    async def second() -> None:
        await first_locked.wait()
        async with pool.acquire() as conn, conn.transaction():
            pids["second"] = await backend_pid(conn)
            versions = await event_store.lock_streams(conn, ["held"])
            order.append(f"second-saw-{versions['held']}")
            await event_store.append(conn, [_event("held", versions["held"] + 1)])

    observer = await pool.acquire()  # before the writers, so it is neither of theirs
    writers = [asyncio.create_task(first()), asyncio.create_task(second())]
    try:
        await first_locked.wait()
        await wait_for(lambda: "second" in pids, message="the second writer's connection")
        await wait_until_blocked(observer, pids["second"], by=pids["first"])
        assert not writers[1].done()
        first_may_append.set()
        await asyncio.gather(*writers)
    finally:
        first_may_append.set()
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
        await pool.release(observer)
    assert order == ["first-saw-1", "first-appended", "second-saw-2"]
    async with pool.acquire() as conn:
        seqs = [e.stream_seq for e in await event_store.load_stream(conn, "held")]
    assert seqs == [1, 2, 3]


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
