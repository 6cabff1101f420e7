"""Where a BatchConsumer keeps its offsets: Kafka commits, or a Postgres table.

The Postgres store (the projector's) writes `projector_offsets` in the batch
transaction, after locking its partitions' rows, and drops records below the
stored offset, so a revoked owner's late batch can never apply twice. On
assignment it seeks every partition synchronously (no `await` before the
last `seek()`: an awaited gap lets the fetcher look up positions itself,
and with `auto_offset_reset="none"` that stalls every partition).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from awooop.infra.kafka.records import RawRecord
from awooop.infra.logging import get_logger

log = get_logger(__name__)

Offsets = dict[TopicPartition, int]


class OffsetStore(Protocol):
    in_database: bool
    """Whether offsets are stored in the batch transaction (a batch with nothing to apply
    still needs one)."""

    def on_assigned(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        """Seek synchronously, before anything awaits."""

    async def after_assigned(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> None:
        """Refine the positions once awaiting is safe."""

    async def begin(self, conn: asyncpg.Connection, records: list[Any]) -> list[Any]:
        """Inside the batch transaction, before processing: the records still to apply."""

    async def store(self, conn: asyncpg.Connection, offsets: Offsets) -> None:
        """Inside the batch transaction, after processing."""

    async def committed(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        """After the database commit."""


async def commit_assigned(consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
    """Commit exactly these offsets for the partitions still assigned; failures are logged.

    A failed Kafka commit after the database commit costs a redelivery,
    which the inbox (or the offset table) absorbs.
    """
    assigned = consumer.assignment()
    kept = {tp: OffsetAndMetadata(n, "") for tp, n in offsets.items() if tp in assigned}
    if not kept:
        return
    try:
        await consumer.commit(kept)
    except Exception as error:
        log.warning("kafka_commit_failed", error=repr(error), partitions=len(kept))


class KafkaOffsetStore:
    """Offsets committed to Kafka after the transaction (the default)."""

    in_database = False

    def on_assigned(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        return None

    async def after_assigned(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> None:
        return None

    async def begin(self, conn: asyncpg.Connection, records: list[Any]) -> list[Any]:
        return records

    async def store(self, conn: asyncpg.Connection, offsets: Offsets) -> None:
        return None

    async def committed(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        await commit_assigned(consumer, offsets)


def _raw(record: Any) -> RawRecord:
    return record if isinstance(record, RawRecord) else record.raw


class PostgresOffsetStore:
    """Offsets in `projector_offsets`, in the batch transaction; Kafka commits for lag only."""

    in_database = True

    def __init__(self, pool: asyncpg.Pool, group: str) -> None:
        self._pool = pool
        self._group = group
        self._known: Offsets = {}
        self._rows: set[TopicPartition] = set()
        """Partitions whose `projector_offsets` row this store has seen."""

    def on_assigned(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        # Seek every partition now, before the first await. A cached offset can
        # only be behind the table (another member may have moved it on since):
        # `begin()` drops whatever that re-reads.
        for tp in assigned:
            consumer.seek(tp, self._known.get(tp, 0))

    async def after_assigned(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> None:
        stored = await self.load(assigned)
        for tp, offset in stored.items():
            if offset != self._known.get(tp, 0):
                consumer.seek(tp, offset)
        self._known.update(stored)

    async def load(self, partitions: Iterable[TopicPartition]) -> Offsets:
        tps = list(partitions)
        rows = await self._pool.fetch(
            "SELECT topic, partition, next_offset FROM projector_offsets "
            "WHERE consumer_group = $1 AND (topic, partition) IN "
            "(SELECT * FROM unnest($2::text[], $3::int[]))",
            self._group,
            [tp.topic for tp in tps],
            [tp.partition for tp in tps],
        )
        return {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def begin(self, conn: asyncpg.Connection, records: list[Any]) -> list[Any]:
        tps = sorted({_raw(r).tp for r in records})
        if not tps:
            return records
        # A partition's row, once there, stays: it is created only the first time this
        # store meets the partition (or finds its row gone), one statement fewer a batch.
        if new := [tp for tp in tps if tp not in self._rows]:
            await self._create_rows(conn, new)
        floor = await self._lock_rows(conn, tps)
        if missing := [tp for tp in tps if tp not in floor]:
            await self._create_rows(conn, missing)
            floor = await self._lock_rows(conn, tps)
        self._rows.update(tps)
        return [r for r in records if _raw(r).offset >= floor[_raw(r).tp]]

    async def _create_rows(self, conn: asyncpg.Connection, tps: list[TopicPartition]) -> None:
        await conn.execute(
            "INSERT INTO projector_offsets (consumer_group, topic, partition, next_offset) "
            "SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS u(t, p) "
            "ON CONFLICT DO NOTHING",
            self._group,
            [tp.topic for tp in tps],
            [tp.partition for tp in tps],
        )

    async def _lock_rows(self, conn: asyncpg.Connection, tps: list[TopicPartition]) -> Offsets:
        rows = await conn.fetch(
            "SELECT topic, partition, next_offset FROM projector_offsets "
            "WHERE consumer_group = $1 AND (topic, partition) IN "
            "(SELECT * FROM unnest($2::text[], $3::int[])) "
            "ORDER BY topic, partition FOR UPDATE",
            self._group,
            [tp.topic for tp in tps],
            [tp.partition for tp in tps],
        )
        return {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def store(self, conn: asyncpg.Connection, offsets: Offsets) -> None:
        await store_offsets(conn, self._group, offsets)

    async def committed(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        self._known.update(offsets)
        with contextlib.suppress(Exception):
            await commit_assigned(consumer, offsets)


async def store_offsets(conn: asyncpg.Connection, group: str, offsets: Offsets) -> None:
    """Move `group`'s rows of `projector_offsets` forward to `offsets` (never back)."""
    tps = list(offsets)
    await conn.execute(
        "INSERT INTO projector_offsets AS o (consumer_group, topic, partition, next_offset) "
        "SELECT $1, t, p, n FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, n) "
        "ON CONFLICT (consumer_group, topic, partition) "
        "DO UPDATE SET next_offset = excluded.next_offset "
        "WHERE o.next_offset < excluded.next_offset",
        group,
        [tp.topic for tp in tps],
        [tp.partition for tp in tps],
        [offsets[tp] for tp in tps],
    )
