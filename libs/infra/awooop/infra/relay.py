"""The outbox relay: publishes committed events, in order, exactly as stored.

One transaction per batch: take a transaction-scoped advisory lock (so a
leader that lost its connection can never mark rows sent), read outbox rows
joined to their events in position order (at most `batch_size` rows and about
`max_batch_bytes`), send each partition's records in order as explicit
batches (partitions in parallel, all within `send_timeout`), await every
acknowledgement, delete those outbox rows, commit. A send failure rolls back
and recreates the producer, so no partition ever receives a later batch after
a failed one. A crash between acknowledgement and commit republishes the
batch: consumers absorb the duplicates by `event_id`.

A row that can never be published (over the record limit, a topic outside the
registry, no key, or a record the broker refuses) is moved to `outbox_parked`
in the same transaction, with an error code, and logged once after the commit
(`E-RELAY-PARKED`); every other row keeps flowing. Later rows of the same topic
and key are parked behind it (`E-RELAY-BEHIND`), so per-key order holds when an
operator re-queues them (`awooop outbox retry`). Outages (connection failures,
timeouts, retriable broker errors) are never parked: the batch rolls back and
is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)

from awooop.contracts.registries.errors import (
    E_RELAY_BEHIND,
    E_RELAY_KEYLESS,
    E_RELAY_OVERSIZE,
    E_RELAY_PARKED,
    E_RELAY_REFUSED,
    E_RELAY_TOPIC_UNKNOWN,
    ErrorCode,
)
from awooop.contracts.registries.topics import MAX_RECORD_BYTES, UnknownTopicError, topic
from awooop.infra.kafka.producer import partition_for
from awooop.infra.kafka.record_size import record_size, within_record_limit
from awooop.infra.logging import get_logger
from awooop.infra.postgres.errors import is_database_outage
from awooop.infra.postgres.event_store import decode_headers
from awooop.infra.readiness import Readiness

log = get_logger(__name__)

RELAY_OUTAGE = "relay-outage"

ProducerFactory = Callable[[], AIOKafkaProducer]
CrashPoint = Callable[[str, list[int]], Awaitable[None]]

MAX_BATCH_BYTES = 8 * 1024 * 1024
"""About how many record bytes one relay batch reads (it may pass this by one record)."""

SEND_TIMEOUT_SECONDS = 20.0
"""The deadline for a batch's sends. The transaction is idle while they are in flight, so
this stays well inside the service roles' 60 s `idle_in_transaction_session_timeout`."""

RECORD_REFUSALS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
    PolicyViolationError,
    UnsupportedForMessageFormatError,
)
"""Broker answers that refuse the records themselves: sending them again cannot succeed.
Everything else (connection loss, timeouts, leader changes) is an outage."""

# Sizes only first, so the byte bound is applied before any row's data is read. A row
# is taken while the bytes before it are under the bound: the first row always is. The
# head of the outbox is found first and each of its events looked up by position (a
# subquery per row, and a LATERAL one with LIMIT 1, which the planner cannot turn
# into a join): with a join, the generic plan of this prepared statement scanned all
# of `events` whenever its statistics lagged behind the table's growth (a hash join
# over a sequential scan, 5 to 9 ms a read under load against 0.2 ms), and with the
# outbox's deleted rows not yet vacuumed it walked `events` from its oldest row.
_READ = """
WITH head AS (
    SELECT o.position,
           (SELECT octet_length(e.data) + coalesce(octet_length(e.key), 0)
            FROM events e WHERE e.position = o.position) AS size
    FROM outbox o
    ORDER BY o.position
    LIMIT $1
), bounded AS (
    SELECT position
    FROM (SELECT position, size, sum(size) OVER (ORDER BY position) AS running FROM head) s
    WHERE running - size < $2
)
SELECT e.position, e.topic, e.key, e.headers, e.data,
       EXISTS (
           SELECT 1 FROM outbox_parked p
           WHERE p.topic = e.topic AND p.key = e.key AND p.position < e.position
       ) AS behind
FROM bounded b
CROSS JOIN LATERAL (
    SELECT e.position, e.topic, e.key, e.headers::text AS headers, e.data
    FROM events e WHERE e.position = b.position LIMIT 1
) e
ORDER BY e.position
"""

_PARK = """
INSERT INTO outbox_parked (position, topic, key, error_code, error)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::text[])
ON CONFLICT (position) DO UPDATE
SET error_code = excluded.error_code, error = excluded.error, parked_at = now()
"""


@dataclass(frozen=True)
class ParkedRow:
    """An outbox row set aside, and why."""

    position: int
    topic: str
    key: bytes | None
    code: ErrorCode
    error: str


def relay_lock_key(schema: str) -> int:
    """The advisory-lock key of one schema's relay (stable across processes)."""
    return zlib.crc32(f"awooop.relay.{schema}".encode())


def is_record_refusal(error: BaseException) -> bool:
    """True when the broker refused the records themselves (see `RECORD_REFUSALS`)."""
    return isinstance(error, RECORD_REFUSALS)


def _parked(row: Any, code: ErrorCode, error: str) -> ParkedRow:
    return ParkedRow(row["position"], row["topic"], row["key"], code, error)


def _behind(row: Any) -> ParkedRow:
    return _parked(row, E_RELAY_BEHIND, "an earlier row of the same topic and key is parked")


class OutboxRelay:
    """Publishes one schema's outbox. Run `run()` as a task; call `wake()` after commits.

    `crash_point` is a hook for fault tests: awaited with a stage name
    (`"acknowledged"`) and the positions of the batch; raising there leaves
    the broker holding records whose outbox rows were never deleted.
    `published` and `parked` count rows since construction.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        producer_factory: ProducerFactory,
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
        poll_interval: float = 0.5,
        crash_point: CrashPoint | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self._pool = pool
        self._readiness = readiness
        self._lock_key = relay_lock_key(schema)
        self._factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._send_timeout = send_timeout
        self._poll_interval = poll_interval
        self._crash_point = crash_point
        self._wakeup = asyncio.Event()
        self._more = False
        self.published = 0
        self.parked = 0

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
        """Handle one batch; return how many outbox rows left the outbox (published or
        parked; 0: nothing to do, or another relay holds the lock)."""
        producer = await self._ensure_producer()
        self._more = False
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                    return 0
                rows = await conn.fetch(_READ, self._batch_size, self._max_batch_bytes)
                if not rows:
                    return 0
                by_partition, parked = self._plan(rows)
                parked += await asyncio.wait_for(
                    self._send(producer, by_partition), self._send_timeout
                )
                positions = [row["position"] for row in rows]
                if self._crash_point is not None:
                    await self._crash_point("acknowledged", positions)
                if parked:
                    await conn.execute(
                        _PARK,
                        [p.position for p in parked],
                        [p.topic for p in parked],
                        [p.key for p in parked],
                        [p.code.code for p in parked],
                        [p.error for p in parked],
                    )
                await conn.execute(
                    "DELETE FROM outbox WHERE position = ANY($1::bigint[])", positions
                )
        except BaseException:
            await self._reset_producer()
            raise
        # Logged after the commit: a rolled-back batch parks nothing, so each row is
        # logged once, when it really left the outbox.
        for p in parked:
            log.error(
                "outbox_row_parked",
                code=E_RELAY_PARKED.code,
                reason=p.code.code,
                position=p.position,
                topic=p.topic,
                error=p.error,
            )
        read_bytes = sum(len(row["data"]) + len(row["key"] or b"") for row in rows)
        self._more = len(rows) >= self._batch_size or read_bytes >= self._max_batch_bytes
        self.published += len(rows) - len(parked)
        self.parked += len(parked)
        return len(rows)

    def _plan(
        self, rows: Sequence[Any]
    ) -> tuple[dict[tuple[str, int], list[Any]], list[ParkedRow]]:
        """Group sendable rows by (topic, partition), in position order; park the rest."""
        by_partition: dict[tuple[str, int], list[Any]] = defaultdict(list)
        parked: list[ParkedRow] = []
        held: set[tuple[str, bytes]] = set()
        for row in rows:
            name, key = row["topic"], row["key"]
            reason = self._unpublishable(row, held)
            if reason is not None:
                parked.append(reason)
                if key is not None:
                    held.add((name, key))
                continue
            by_partition[(name, partition_for(key, topic(name).partitions))].append(row)
        return by_partition, parked

    @staticmethod
    def _unpublishable(row: Any, held: set[tuple[str, bytes]]) -> ParkedRow | None:
        name, key = row["topic"], row["key"]
        if row["behind"] or (key is not None and (name, key) in held):
            return _behind(row)
        try:
            topic(name)
        except UnknownTopicError as error:
            return _parked(row, E_RELAY_TOPIC_UNKNOWN, str(error.args[0]))
        if key is None:
            return _parked(row, E_RELAY_KEYLESS, "an event record needs a key for its partition")
        size = record_size(key, row["data"], decode_headers(row["headers"]))
        if not within_record_limit(size):
            return _parked(
                row,
                E_RELAY_OVERSIZE,
                f"record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit",
            )
        return None

    async def _send(
        self, producer: AIOKafkaProducer, by_partition: dict[tuple[str, int], list[Any]]
    ) -> list[ParkedRow]:
        results = await asyncio.gather(
            *(
                _PartitionSend(producer, name, partition).run(records)
                for (name, partition), records in by_partition.items()
            )
        )
        return [p for parked in results for p in parked]

    async def run(self) -> None:
        """Relay until cancelled: drain while full batches come back, else wait for a wake-up."""
        backoff = 0.1
        while True:
            # Cleared before reading the outbox: a commit signalled while this batch
            # is in flight leaves the flag set, so its rows are not left to the poll.
            self._wakeup.clear()
            try:
                await self.relay_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Rows it can never publish are parked; what is left is an outage
                # (retried) or a bug, which escapes so the process exits loudly.
                if not (is_database_outage(error) or isinstance(error, KafkaError | TimeoutError)):
                    raise
                log.warning("relay_batch_failed", error=repr(error), retry_in=backoff)
                if self._readiness is not None:
                    self._readiness.hold(RELAY_OUTAGE, repr(error))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._readiness is not None:
                self._readiness.release(RELAY_OUTAGE)
            if self._more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    async def close(self) -> None:
        await self._reset_producer()


class _PartitionSend:
    """One partition's records, sent strictly in order; refused records are parked.

    A later batch is sent only once the earlier one is acknowledged. The broker
    refuses a batch whole, so after a refusal of several records none of them
    was written: they are sent again one by one to find the refused ones, and
    every later record of a refused record's key is parked behind it.
    """

    def __init__(self, producer: AIOKafkaProducer, topic_name: str, partition: int) -> None:
        self._producer = producer
        self._topic = topic_name
        self._partition = partition
        self._held: set[bytes] = set()
        self.parked: list[ParkedRow] = []

    async def run(self, rows: Sequence[Any]) -> list[ParkedRow]:
        batch, members = self._producer.create_batch(), []
        for row in rows:
            if row["key"] in self._held:
                self.parked.append(_behind(row))
                continue
            if _append(batch, row):
                members.append(row)
                continue
            await self._flush(batch, members)
            batch, members = self._producer.create_batch(), []
            if row["key"] in self._held:
                self.parked.append(_behind(row))
            elif _append(batch, row):
                members.append(row)
            else:
                self._refuse(row, E_RELAY_OVERSIZE, "record does not fit a producer batch")
        if members:
            await self._flush(batch, members)
        return self.parked

    async def _flush(self, batch: Any, members: list[Any]) -> None:
        try:
            await self._deliver(batch)
            return
        except Exception as error:
            if not is_record_refusal(error):
                raise
            if len(members) == 1:
                self._refuse(members[0], E_RELAY_REFUSED, repr(error))
                return
        for row in members:
            if row["key"] in self._held:
                self.parked.append(_behind(row))
                continue
            single = self._producer.create_batch()
            _append(single, row)
            try:
                await self._deliver(single)
            except Exception as error:
                if not is_record_refusal(error):
                    raise
                self._refuse(row, E_RELAY_REFUSED, repr(error))

    async def _deliver(self, batch: Any) -> None:
        await (await self._producer.send_batch(batch, self._topic, partition=self._partition))

    def _refuse(self, row: Any, code: ErrorCode, error: str) -> None:
        self.parked.append(_parked(row, code, error))
        self._held.add(row["key"])


def _append(batch: Any, row: Any) -> bool:
    headers = decode_headers(row["headers"])
    return (
        batch.append(key=row["key"], value=row["data"], timestamp=None, headers=headers) is not None
    )
