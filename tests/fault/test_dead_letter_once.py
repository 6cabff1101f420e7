"""Poison during an outage: judged once the database is fit, and dead-lettered once.

Each test owns its stack: it stops Postgres or turns it read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest

from awooop.contracts.records.dead_letter import DLQ_HEADER_ERROR_CODE, DLQ_HEADER_ORIGIN_OFFSET
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.infra.kafka.admin import ensure_topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.settings import asyncpg_dsn
from support.dlq_reader import dead_letters
from support.infra import unique
from support.own_stack import own_stack
from support.pipeline import (
    CODEC,
    TOPIC,
    applying_processor,
    create_applied_table,
    envelope,
    running_consumer,
    wait_for,
)
from support.schemas import service_schema

pytestmark = pytest.mark.fault


async def _send(bootstrap_settings, stream: str, values) -> list[int]:  # type: ignore[no-untyped-def]
    producer = create_producer(bootstrap_settings.kafka)
    await producer.start()
    try:
        offsets = []
        for value, headers in values:
            sent = await producer.send_and_wait(TOPIC, value, key=stream.encode(), headers=headers)
            offsets.append(sent.offset)
        return offsets
    finally:
        await producer.stop()


def _headers(env):  # type: ignore[no-untyped-def]
    return record_headers(env, make_traceparent(env.trace_id))


async def test_a_poison_record_fetched_during_an_outage_is_dead_lettered_exactly_once(
    tmp_path: Path,
) -> None:
    """Breaks caught: decode poison re-sent to the DLQ at every outage retry of its batch
    (the old loop decoded, and dead-lettered, inside the retry), and an outage mistaken
    for poison (the good records dead-lettered while Postgres was down)."""
    with own_stack(tmp_path / "stack") as stack:
        settings = stack.urls.settings()
        await ensure_topics(settings.kafka)
        pool = await service_schema(stack.urls.database, "once_sink")
        await create_applied_table(pool)
        project, group = unique("p"), unique("g-")
        stream = f"{project}-run"
        first, last = envelope(project, stream, 1), envelope(project, stream, 2)
        # Sent before the consumer starts, so its first fetch holds all three: the
        # poison sits in the very batch that the outage makes it retry.
        offsets = await _send(
            settings,
            stream,
            [
                (CODEC.encode(first), _headers(first)),
                (b"\xff not json", _headers(first)),
                (CODEC.encode(last), _headers(last)),
            ],
        )
        stack.stop_postgres()
        async with running_consumer(
            settings, pool, group, applying_processor(project, group)
        ) as rc:
            await wait_for(
                lambda: rc.consumer.stats.outages >= 4, within=40, message="four outage retries"
            )
            assert not rc.readiness.ready
            stack.start_postgres()
            await wait_for(
                lambda: _applied(pool, 2), within=40, message="both good records applied"
            )
            await wait_for(lambda: rc.readiness.ready, message="ready again")
        entries = await dead_letters(stack.urls.kafka, group)
        assert [e.header(DLQ_HEADER_ORIGIN_OFFSET) for e in entries] == [str(offsets[1])]
        assert entries[0].header(DLQ_HEADER_ERROR_CODE) == "E-DLQ-DECODE"
        rows = await pool.fetch("SELECT event_id FROM applied ORDER BY position")
        assert [r["event_id"] for r in rows] == [first.event_id, last.event_id]
        await pool.close()


async def test_a_record_failing_while_the_database_is_read_only_waits_to_be_judged(
    tmp_path: Path,
) -> None:
    """Break caught: isolating (and dead-lettering) a record without first probing that
    the database is writable. While Postgres is read-only, a data error proves nothing
    (here the processor validates before it writes, so the read-only refusal never shows
    in the batch's own error); the record must wait, then be judged, once, after."""
    with own_stack(tmp_path / "stack") as stack:
        settings = stack.urls.settings()
        await ensure_topics(settings.kafka)
        pool = await service_schema(stack.urls.database, "readonly_sink")
        await create_applied_table(pool)
        admin = await asyncpg.connect(asyncpg_dsn(stack.urls.database))
        project, group = unique("p"), unique("g-")
        stream = f"{project}-run"
        good, refused = envelope(project, stream, 1), envelope(project, stream, 2, reply="no")
        processor = ValidatingProcessor(project, group)
        try:
            async with running_consumer(settings, pool, group, processor) as rc:
                await wait_for(lambda: rc.consumer.assignment(), message="partitions assigned")
                await admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
                await admin.execute("SELECT pg_reload_conf()")
                await wait_for(lambda: _read_only(pool), message="new transactions read-only")
                offsets = await _send(
                    settings,
                    stream,
                    [
                        (CODEC.encode(refused), _headers(refused)),
                        (CODEC.encode(good), _headers(good)),
                    ],
                )
                await wait_for(
                    lambda: rc.consumer.stats.outages >= 3, within=30, message="outage retries"
                )
                assert rc.dead_letters.sent == 0
                assert "read-only" in rc.readiness.reasons.get("outage", "")
                await admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
                await admin.execute("SELECT pg_reload_conf()")
                await wait_for(lambda: _applied(pool, 1), within=30, message="good record applied")
                await wait_for(lambda: rc.readiness.ready, message="ready again")
        finally:
            await admin.close()
        entries = await dead_letters(stack.urls.kafka, group)
        assert [e.header(DLQ_HEADER_ORIGIN_OFFSET) for e in entries] == [str(offsets[0])]
        assert entries[0].header(DLQ_HEADER_ERROR_CODE) == "E-DLQ-HANDLER"
        await pool.close()


class ValidatingProcessor:
    """Checks every record of the batch before writing anything (a ValueError for a
    reply of "no"), then writes one `applied` row per record of `project`."""

    def __init__(self, project: str, name: str) -> None:
        self.project, self.name = project, name

    def handles(self, record: RawRecord) -> bool:
        return record.header("event_type") == "run.completed"

    def decode(self, record: RawRecord) -> DecodedRecord:
        return DecodedRecord(record, CODEC.decode(record.value or b""))

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        mine = [r.body for r in records if r.body.project_id == self.project]
        for env in mine:
            if env.payload.reply == "no":
                raise ValueError(f"{env.stream_id} says no")
        await conn.executemany(
            "INSERT INTO applied (event_id, stream_id, stream_seq) VALUES ($1, $2, $3)",
            [(e.event_id, e.stream_id, e.stream_seq) for e in mine],
        )

    def committed(self) -> None:
        return None


async def _read_only(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        return bool(await conn.fetchval("SELECT current_setting('transaction_read_only') = 'on'"))


async def _applied(pool: asyncpg.Pool, count: int) -> bool:
    try:
        return bool(await pool.fetchval("SELECT count(*) >= $1 FROM applied", count))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
