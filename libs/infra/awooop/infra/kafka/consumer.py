"""The BatchConsumer: one per service process, folding batches in one transaction each.

A loop of: `getmany` (up to `max_poll_records`), decode (poison straight to
the DLQ), fold the batch through the processor in partition-offset order
inside one transaction, store the offsets (Kafka after the commit, or a
Postgres table inside it), repeat. Failures take one of three paths:

* **conflict** — a `VersionConflict` retries the whole batch (reload, decide
  again) up to `MAX_CONFLICT_RETRIES`, then counts as an outage;
* **outage** — database or broker unavailable: nothing is committed, the
  consumer turns unready and retries the same batch with capped backoff;
  nothing reaches the DLQ;
* **poison** — any other error: the batch is retried record by record, each
  in its own transaction; a record that fails alone goes to the DLQ and the
  rest commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError, NoOffsetForPartitionError, RecordTooLargeError
from aiokafka.structs import TopicPartition

from awooop.contracts.errors import E_BROKER_RESET, E_DLQ_HANDLER, E_DLQ_OVERSIZE
from awooop.contracts.topics import MAX_RECORD_BYTES
from awooop.infra.kafka.dlq import DeadLetters
from awooop.infra.kafka.offsets import KafkaOffsetStore, Offsets, OffsetStore
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.logging import get_logger
from awooop.infra.postgres.errors import (
    ConflictBoundExceeded,
    VersionConflict,
    is_database_outage,
)
from awooop.infra.postgres.event_store import MAX_CONFLICT_RETRIES
from awooop.infra.readiness import Readiness
from awooop.infra.settings import KafkaSettings

log = get_logger(__name__)

OUTAGE = "outage"
BROKER_EPOCH = "broker-epoch"
JOINING = "joining-group"


class BatchProcessor(Protocol):
    """What a BatchConsumer folds its batches through."""

    name: str

    def handles(self, record: RawRecord) -> bool:
        """False for records to skip without decoding (types this service ignores)."""

    def decode(self, record: RawRecord) -> DecodedRecord:
        """Decode once; raise `PoisonRecord` for what can never be processed."""

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        """Apply the records, in order, inside the caller's transaction."""

    def committed(self) -> None:
        """Called after each transaction that ran `process` committed (hand work on)."""


def is_outage(error: BaseException) -> bool:
    return is_database_outage(error) or isinstance(error, KafkaError)


class BatchConsumer:
    """Consumes `topics` as group `group` through `processor`; see the module docstring."""

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        group: str,
        topics: Sequence[str],
        processor: BatchProcessor,
        pool: asyncpg.Pool,
        dead_letters: DeadLetters,
        readiness: Readiness,
        offset_store: OffsetStore | None = None,
        epoch_confirmed: Callable[[], Awaitable[bool]] | None = None,
        on_committed: Callable[[], None] | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        self._settings = settings
        self.group = group
        self._topics = list(topics)
        self._processor = processor
        self._pool = pool
        self._dlq = dead_letters
        self._readiness = readiness
        self._store: OffsetStore = offset_store or KafkaOffsetStore()
        self._epoch_confirmed = epoch_confirmed
        self._on_committed = on_committed
        self._max_backoff = max_backoff
        self._lock = asyncio.Lock()
        self._unchecked: set[TopicPartition] = set()
        self._halted = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.processed = 0

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="none",
            session_timeout_ms=self._settings.session_timeout_ms,
            heartbeat_interval_ms=self._settings.heartbeat_interval_ms,
            max_poll_interval_ms=600_000,
            max_partition_fetch_bytes=MAX_RECORD_BYTES + 64 * 1024,
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
            request_timeout_ms=self._settings.request_timeout_ms,
        )
        # Unready until the group's first assignment: before it, records sent
        # now would wait for a join and a rebalance, not for this process.
        self._readiness.hold(JOINING, self.group)
        await self.consumer.start()
        self.consumer.subscribe(self._topics, listener=_Listener(self))

    async def stop(self) -> None:
        """Leave the group; call after cancelling `run()` (a cancelled batch never commits)."""
        if self.consumer is not None:
            await self.consumer.stop()

    def halt(self, reason: str) -> None:
        """Stop consuming for good (a broker reset): nothing more is read or committed."""
        self._readiness.hold(BROKER_EPOCH, reason)
        self._halted.set()

    @property
    def halted(self) -> bool:
        return self._halted.is_set()

    async def lag(self) -> dict[TopicPartition, int]:
        """Records behind the end, per assigned partition, from fetch high watermarks.

        `end_offsets()` is wrong on the embedded broker (it counts batches, not
        records); the high watermark of the last fetch response is right.
        Partitions not fetched from yet are absent.
        """
        assert self.consumer is not None
        behind: dict[TopicPartition, int] = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                behind[tp] = max(0, highwater - await self.consumer.position(tp))
        return behind

    async def run(self) -> None:
        """Consume until cancelled or halted."""
        assert self.consumer is not None, "start() first"
        while not self.halted:
            try:
                fetched = await self.consumer.getmany(
                    timeout_ms=200, max_records=self._settings.max_poll_records
                )
            except NoOffsetForPartitionError as error:
                await self._no_stored_offset(error.args[0])
                continue
            except RecordTooLargeError as error:
                await self._oversize_unfetchable(error)
                continue
            if self.halted:
                break
            await self._check_positions()
            records = [RawRecord.of(r) for rs in fetched.values() for r in rs]
            if records:
                records.sort(key=lambda r: (r.topic, r.partition, r.offset))
                async with self._lock:
                    await self._until_done(records)
        # Halted by a broker reset: leave the group now, so no metadata request
        # of this client auto-creates topics on the new broker. Never under the
        # batch lock: stopping may run the revocation callback, which takes it.
        await self.consumer.stop()

    async def _no_stored_offset(self, tp: TopicPartition) -> None:
        # With no stored offset, start from the beginning only while the broker
        # is the one this service knows: after a broker loss the old offsets
        # are gone and starting over would apply the new log from the wrong place.
        assert self.consumer is not None
        if self._epoch_confirmed is None or await self._epoch_confirmed():
            self.consumer.seek(tp, 0)
        else:
            self.halt(f"{E_BROKER_RESET.code}: no stored offset for {tp} on a new broker epoch")

    async def _oversize_unfetchable(self, error: RecordTooLargeError) -> None:
        _message, tp, offset, *_ = error.args
        await self._dead_letter_with_retry(
            tp.topic, tp.partition, offset, E_DLQ_OVERSIZE.code, "record over the fetch size", None
        )

    async def _check_positions(self) -> None:
        # The embedded broker never reports an out-of-range offset: a position
        # past the high watermark after an assignment means the log was reset.
        assert self.consumer is not None
        for tp in list(self._unchecked):
            if tp not in self.consumer.assignment():
                self._unchecked.discard(tp)
                continue
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            self._unchecked.discard(tp)
            position = await self.consumer.position(tp)
            if position > highwater:
                self.halt(f"{E_BROKER_RESET.code}: {tp} position {position} > end {highwater}")

    async def _until_done(self, records: list[RawRecord]) -> None:
        """Process a batch, retrying through outages with capped backoff."""
        backoff = 0.2
        while True:
            try:
                await self._process_batch(records)
            except Exception as error:
                if not is_outage(error):
                    raise
                self._readiness.hold(OUTAGE, repr(error))
                log.warning(
                    "consumer_outage", group=self.group, error=repr(error), retry_in=backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                assert self.consumer is not None
                assigned = self.consumer.assignment()
                records = [r for r in records if r.tp in assigned]
                continue
            self._readiness.release(OUTAGE)
            return

    async def _process_batch(self, records: list[RawRecord]) -> None:
        decoded: list[DecodedRecord] = []
        for record in records:
            item = await self._decode(record)
            if item is not None:
                decoded.append(item)
        offsets = _next_offsets(records)
        try:
            await self._transaction(decoded, offsets)
        except Exception as error:
            if is_outage(error):
                raise
            log.warning("batch_failed_isolating", group=self.group, error=repr(error))
            await self._isolate(decoded, offsets)
        self.processed += len(decoded)

    async def _decode(self, record: RawRecord) -> DecodedRecord | None:
        if not self._processor.handles(record):
            return None
        if record.value is not None and len(record.value) > MAX_RECORD_BYTES:
            await self._dead_letter(record, E_DLQ_OVERSIZE.code, f"{len(record.value)} bytes")
            return None
        try:
            return self._processor.decode(record)
        except PoisonRecord as poison:
            await self._dead_letter(record, poison.code, poison.reason)
            return None

    async def _transaction(self, records: Sequence[DecodedRecord], offsets: Offsets) -> None:
        for _attempt in range(MAX_CONFLICT_RETRIES + 1):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    pending = await self._store.begin(conn, list(records))
                    if pending:
                        await self._processor.process(conn, pending)
                    await self._store.store(conn, offsets)
                break
            except VersionConflict:
                continue
        else:
            raise ConflictBoundExceeded(f"{self.group}: conflicts past {MAX_CONFLICT_RETRIES}")
        assert self.consumer is not None
        await self._store.committed(self.consumer, offsets)
        self._processor.committed()
        if self._on_committed is not None:
            self._on_committed()

    async def _isolate(self, records: Sequence[DecodedRecord], offsets: Offsets) -> None:
        for item in records:
            single = {item.raw.tp: item.raw.offset + 1}
            try:
                await self._transaction([item], single)
            except Exception as error:
                if is_outage(error):
                    raise
                await self._dead_letter(item.raw, E_DLQ_HANDLER.code, repr(error))
                await self._transaction([], single)
        # Offsets of records skipped or dead-lettered at decode time.
        await self._transaction([], offsets)

    async def _dead_letter(self, record: RawRecord, code: str, error: str) -> None:
        await self._dlq.send(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            code=code,
            error=error,
            record=record,
        )

    async def _dead_letter_with_retry(
        self, topic: str, partition: int, offset: int, code: str, error: str, record: Any
    ) -> None:
        backoff = 0.2
        while True:
            try:
                await self._dlq.send(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    code=code,
                    error=error,
                    record=record,
                )
                self._readiness.release(OUTAGE)
                return
            except KafkaError as failure:
                self._readiness.hold(OUTAGE, repr(failure))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)


def _next_offsets(records: Sequence[RawRecord]) -> Offsets:
    offsets: Offsets = {}
    for record in records:
        offsets[record.tp] = max(offsets.get(record.tp, 0), record.offset + 1)
    return offsets


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Wait for the in-flight batch: its commit must land before another
        # member starts on these partitions.
        async with self._owner._lock:
            pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        owner = self._owner
        assert owner.consumer is not None
        owner._store.on_assigned(owner.consumer, set(assigned))
        owner._unchecked |= set(assigned)
        await owner._store.after_assigned(owner.consumer, set(assigned))
        owner._readiness.release(JOINING)
