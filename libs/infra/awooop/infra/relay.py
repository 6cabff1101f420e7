"""The outbox relay: publishes committed events, in order, exactly as stored.

One transaction per batch: take a transaction-scoped advisory lock (so a
leader that lost its connection can never mark rows sent), read up to
`batch_size` outbox rows joined to their events in position order, send each
partition's records in order as explicit batches (partitions in parallel),
await every acknowledgement, delete those outbox rows, commit. A send failure
rolls back and recreates the producer, so no partition ever receives a later
batch after a failed one. A crash between acknowledgement and commit
republishes the batch: consumers absorb the duplicates by `event_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from awooop.contracts.topics import MAX_RECORD_BYTES, topic
from awooop.infra.kafka.producer import partition_for
from awooop.infra.logging import get_logger
from awooop.infra.postgres.event_store import decode_headers

log = get_logger(__name__)

ProducerFactory = Callable[[], AIOKafkaProducer]
CrashPoint = Callable[[str, list[int]], Awaitable[None]]

_READ = """
SELECT o.position, e.topic, e.key, e.headers::text AS headers, e.data
FROM outbox o JOIN events e USING (position)
ORDER BY o.position
LIMIT $1
"""


class OversizeEvent(RuntimeError):
    """A stored event too large for the broker: a producer bug, never sent."""


def relay_lock_key(schema: str) -> int:
    """The advisory-lock key of one schema's relay (stable across processes)."""
    return zlib.crc32(f"awooop.relay.{schema}".encode())


class OutboxRelay:
    """Publishes one schema's outbox. Run `run()` as a task; call `wake()` after commits.

    `crash_point` is a hook for fault tests: awaited with a stage name
    (`"acknowledged"`) and the positions of the batch; raising there leaves
    the broker holding records whose outbox rows were never deleted.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        producer_factory: ProducerFactory,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        crash_point: CrashPoint | None = None,
    ) -> None:
        self._pool = pool
        self._lock_key = relay_lock_key(schema)
        self._factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._crash_point = crash_point
        self._wakeup = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        """Signal that a local transaction committed new outbox rows."""
        self._wakeup.set()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._factory()
            await producer.start()
            self._producer = producer
        return self._producer

    async def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def relay_once(self) -> int:
        """Publish one batch; return how many records were sent (0: nothing, or not leader)."""
        producer = await self._ensure_producer()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                    return 0
                rows = await conn.fetch(_READ, self._batch_size)
                if not rows:
                    return 0
                await self._send(producer, rows)
                positions = [row["position"] for row in rows]
                if self._crash_point is not None:
                    await self._crash_point("acknowledged", positions)
                await conn.execute(
                    "DELETE FROM outbox WHERE position = ANY($1::bigint[])", positions
                )
        except BaseException:
            await self._reset_producer()
            raise
        self.published += len(rows)
        return len(rows)

    async def _send(self, producer: AIOKafkaProducer, rows: list[Any]) -> None:
        by_partition: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for row in rows:
            size = len(row["data"]) + len(row["key"] or b"") + len(row["headers"])
            if size > MAX_RECORD_BYTES:
                raise OversizeEvent(f"outbox position {row['position']} is {size} bytes")
            spec = topic(row["topic"])
            partition = partition_for(row["key"], spec.partitions)
            by_partition[(row["topic"], partition)].append(row)
        await asyncio.gather(
            *(
                self._send_partition(producer, topic, partition, records)
                for (topic, partition), records in by_partition.items()
            )
        )

    @staticmethod
    async def _send_partition(
        producer: AIOKafkaProducer, topic: str, partition: int, rows: list[Any]
    ) -> None:
        # Batches of one partition go strictly one after another: a later batch
        # is sent only once the earlier one is acknowledged.
        batch = producer.create_batch()
        for row in rows:
            headers = decode_headers(row["headers"])
            if batch.append(key=row["key"], value=row["data"], timestamp=None, headers=headers):
                continue
            await (await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=row["key"], value=row["data"], timestamp=None, headers=headers):
                continue
            raise OversizeEvent(f"outbox position {row['position']} does not fit a batch")
        if batch.record_count():
            await (await producer.send_batch(batch, topic, partition=partition))

    async def run(self) -> None:
        """Relay until cancelled: drain while full batches come back, else wait for a wake-up."""
        backoff = 0.1
        while True:
            # Cleared before reading the outbox: a commit signalled while this batch
            # is in flight leaves the flag set, so its rows are not left to the poll.
            self._wakeup.clear()
            try:
                sent = await self.relay_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("relay_batch_failed", error=repr(error), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent >= self._batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    async def close(self) -> None:
        await self._reset_producer()
