"""The consumer hands a `RejectionRecorder` every record it dead-letters, inside the
transaction that stores the offset past it: refused at decode time, or failing its
handler alone once the batch was isolated. Each is recorded once, beside the good
records of the same partition, which are applied."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest

from awooop.infra.kafka.consumer import Rejection
from awooop.infra.kafka.producer import create_producer
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from support.infra import StackUrls, unique
from support.pipeline import (
    CODEC,
    TOPIC,
    create_applied_table,
    envelope,
    running_consumer,
    wait_for,
)
from support.schemas import service_schema

pytestmark = pytest.mark.integration


class RecordingRejections:
    """Applies `run.completed` of one project; `undecodable` bytes are refused at decode
    time and a reply of `no` fails the handler. Refusals land in `rejected`."""

    def __init__(self, project: str) -> None:
        self.name = f"reject-{project}"
        self._project = project

    def handles(self, record: RawRecord) -> bool:
        return (record.key or b"").startswith(self._project.encode())

    def decode(self, record: RawRecord) -> DecodedRecord:
        if record.value == b"undecodable":
            raise PoisonRecord("E-DLQ-DECODE", "undecodable on purpose")
        return DecodedRecord(record, CODEC.decode(record.value or b""))

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        for item in records:
            if item.body.payload.reply == "no":
                raise ValueError(f"{item.body.stream_id} says no")
        await conn.executemany(
            "INSERT INTO applied (event_id, stream_id, stream_seq) VALUES ($1, $2, $3)",
            [(r.body.event_id, r.body.stream_id, r.body.stream_seq) for r in records],
        )

    async def record_rejected(
        self, conn: asyncpg.Connection, rejected: Sequence[Rejection]
    ) -> None:
        await conn.executemany(
            "INSERT INTO rejected (record_offset, code) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(record.offset, code) for record, code, _ in rejected],
        )

    def committed(self) -> None:
        return None


@pytest.fixture
async def pool(kafka_ready: StackUrls) -> asyncpg.Pool:
    pool = await service_schema(kafka_ready.database, unique("rej_"), ("offsets",))
    await create_applied_table(pool)
    await pool.execute(
        "CREATE TABLE rejected (record_offset bigint PRIMARY KEY, code text NOT NULL)"
    )
    yield pool
    await pool.close()


async def test_refused_records_are_recorded_with_the_offset_that_passes_them(
    kafka_ready: StackUrls, pool: asyncpg.Pool
) -> None:
    settings = kafka_ready.settings()
    project = unique("p")
    stream = f"{project}-run"  # one key: every record on one partition, in order
    values = [
        CODEC.encode(envelope(project, stream, 1)),
        b"undecodable",
        CODEC.encode(envelope(project, stream, 2, reply="no")),
        CODEC.encode(envelope(project, stream, 3)),
    ]
    producer = create_producer(settings.kafka)
    await producer.start()
    try:
        offsets = [
            (await producer.send_and_wait(TOPIC, value, key=stream.encode())).offset
            for value in values
        ]
    finally:
        await producer.stop()

    async with running_consumer(settings, pool, unique("g-"), RecordingRejections(project)):
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM rejected"))
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM applied"))
    rejected = dict(await pool.fetch("SELECT record_offset, code FROM rejected"))
    assert rejected == {offsets[1]: "E-DLQ-DECODE", offsets[2]: "E-DLQ-HANDLER"}
    applied = sorted(r["stream_seq"] for r in await pool.fetch("SELECT stream_seq FROM applied"))
    assert applied == [1, 3]
