"""A processor's post-commit actions run only after the transaction that queued them.

The break this catches: a batch whose `process` queued an action (a step handed on, a
kill switch tripped) and whose transaction then failed, retried as a transaction that
runs no `process` (its records' partitions were revoked during the backoff, a rejected
record is left to record), running the stale action after that second commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from awooop.infra.kafka.consumer import BatchConsumer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.processor import BatchContext, EventProcessor
from awooop.infra.readiness import Readiness
from awooop.infra.settings import KafkaSettings

pytestmark = pytest.mark.unit

TP = TopicPartition("awooop.run.events.v1", 0)


class Conn:
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class Pool:
    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        yield Conn()


class Store:
    """Kafka-kept offsets whose database part fails once, as a commit lost to an outage."""

    in_database = False

    def __init__(self) -> None:
        self.failures = 1

    async def begin(self, conn: Any, records: list[Any]) -> list[Any]:
        return records

    async def store(self, conn: Any, offsets: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("the database went away")


class Handing(EventProcessor):
    """Queues one post-commit action per batch it applies."""

    def __init__(self) -> None:
        super().__init__("probe", None, use_inbox=False)
        self.ran: list[int] = []

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        count = len(records)
        context.after_commit(lambda: self.ran.append(count))


def _consumer(processor: Handing, store: Store) -> BatchConsumer:
    return BatchConsumer(
        settings=KafkaSettings(bootstrap="127.0.0.1:1"),
        group="awooop.probe",
        topics=[TP.topic],
        processor=processor,
        pool=Pool(),  # type: ignore[arg-type]
        dead_letters=None,  # type: ignore[arg-type]
        readiness=Readiness(),
        offset_store=store,  # type: ignore[arg-type]
    )


def _record(offset: int) -> DecodedRecord:
    return DecodedRecord(RawRecord(TP.topic, TP.partition, offset, None, b"", (), 0), None)


async def test_a_rolled_back_batchs_actions_never_run_after_a_later_commit() -> None:
    processor, store = Handing(), Store()
    consumer = _consumer(processor, store)
    with pytest.raises(ConnectionResetError):
        await consumer._transaction([_record(0)], {TP: 1})
    assert processor.ran == []
    # Retried with nothing left to process, only a rejected record to record.
    rejected = (_record(1).raw, "E-DLQ-DECODE", "not an envelope")
    await consumer._transaction([], {TP: 2}, [rejected])
    assert processor.ran == []
    # A transaction that runs `process` runs its own actions, once.
    await consumer._transaction([_record(2)], {TP: 3})
    assert processor.ran == [1]
