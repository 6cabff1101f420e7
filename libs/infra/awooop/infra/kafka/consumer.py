"""The BatchConsumer: one per service process, folding batches in one transaction each.

A loop of: `getmany` (up to `max_poll_records`), decode once (poison to the
DLQ), fold the batch through the processor in partition-offset order inside
one transaction, store the offsets (Kafka after the commit, or a Postgres
table inside it), repeat. Failures take one of three paths:

* **conflict** — a `VersionConflict` retries the whole batch (reload, decide
  again) up to `MAX_CONFLICT_RETRIES`, then counts as an outage;
* **poison** — only a failure of the data (`is_data_error`, or `PoisonRecord`
  from a decoder): the batch is retried record by record, each in its own
  transaction, once a probe showed the database up, writable and the role
  able to write its schema; a record that fails alone with a data error goes
  to the DLQ and the rest commit;
* **outage** — everything else (database away, read-only, privileges
  revoked, broker unreachable, an error nobody foresaw): nothing is
  committed, the consumer turns unready and retries the same batch with
  capped backoff; nothing reaches the DLQ.

Each fetched batch is decoded once and every record of it is dead-lettered
at most once, however many outage retries the batch takes. A halt (broker
reset) ends the loop at once, also in the middle of an outage.

A batch with nothing to apply (every record of a type the service does not
handle) opens no transaction when offsets live in Kafka. Offsets are committed
to Kafka only after the transaction that recorded their batch, and in
coalesced commits: a batch's offsets join the pending ones and go within
`COMMIT_SECONDS` (a skipped batch's within `SKIPPED_COMMIT_SECONDS`), when the
partitions are revoked, and when the consumer stops. A crash in between
redelivers those records, which every processor absorbs (its inbox, ingress's
position claims, the projector's offset table); under load one offset commit
then covers many batches, and no batch waits for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import (
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)
from aiokafka.structs import TopicPartition

from awooop.contracts.registries.errors import (
    E_BROKER_RESET,
    E_DLQ_DECODE,
    E_DLQ_HANDLER,
    E_DLQ_OVERSIZE,
)
from awooop.contracts.registries.topics import MAX_RECORD_BYTES
from awooop.infra.kafka.dlq import DeadLetters
from awooop.infra.kafka.offsets import KafkaOffsetStore, Offsets, OffsetStore
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.logging import get_logger
from awooop.infra.postgres.errors import (
    ConflictBoundExceeded,
    DatabaseNotWritable,
    VersionConflict,
    is_data_error,
)
from awooop.infra.postgres.event_store import MAX_CONFLICT_RETRIES
from awooop.infra.postgres.probe import writable_problem
from awooop.infra.readiness import Readiness
from awooop.infra.settings import KafkaSettings

log = get_logger(__name__)

SKIPPED_COMMIT_SECONDS = 1.0
"""How long the offsets past batches with nothing to apply may wait for the next commit."""
COMMIT_SECONDS = 0.1
"""How long the offsets of applied batches may wait, coalescing, for their Kafka commit."""
OUTAGE = "outage"
BROKER_EPOCH = "broker-epoch"
JOINING = "joining-group"

Probe = Callable[[], Awaitable[str | None]]
ClientFactory = Callable[..., AIOKafkaConsumer]


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


Rejection = tuple[RawRecord, str, str]
"""A record dead-lettered by this consumer: the record, the error code and the reason."""


@runtime_checkable
class RejectionRecorder(Protocol):
    """A processor that also records, in its own store, the records it refused.

    ``record_rejected`` runs inside the batch transaction that stores the offsets past
    the rejected records (after they reached the DLQ), so what a service shows about a
    refusal commits with the offset. A redelivered batch hands the same rejections
    again: the recorder de-duplicates by the record's position.
    """

    async def record_rejected(
        self, conn: asyncpg.Connection, rejected: Sequence[Rejection]
    ) -> None: ...


def is_poison(error: BaseException) -> bool:
    """A failure of the record itself; anything else is an outage (module docstring)."""
    return isinstance(error, PoisonRecord) or is_data_error(error)


@dataclass
class ConsumerStats:
    """Counters and gauges of one consumer, read by the metrics endpoint."""

    batches: int = 0
    records: int = 0
    last_batch_records: int = 0
    last_batch_seconds: float = 0.0
    outages: int = 0
    batch_seconds_total: float = 0.0
    lingers: int = 0
    """Batches that waited for more records because the consumer was busy."""


@dataclass
class _FetchedBatch:
    """One `getmany` result while it is being worked through, across outage retries."""

    raw: list[RawRecord]
    decoded: list[DecodedRecord]
    poison: list[tuple[RawRecord, str, str]]
    settled: set[tuple[TopicPartition, int]] = field(default_factory=set)
    """Records dead-lettered or committed alone: never applied or dead-lettered again."""

    def live(self, assigned: set[TopicPartition]) -> list[DecodedRecord]:
        return [d for d in self.decoded if d.raw.tp in assigned and _at(d.raw) not in self.settled]

    def offsets(self, assigned: set[TopicPartition]) -> Offsets:
        return _next_offsets([r for r in self.raw if r.tp in assigned])


def _at(record: RawRecord) -> tuple[TopicPartition, int]:
    return (record.tp, record.offset)


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
        fetch_min_bytes: int = 1,
        max_backoff: float = 5.0,
        schema: str | None = None,
        probe: Probe | None = None,
        client_factory: ClientFactory = AIOKafkaConsumer,
        on_halt: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self.group = group
        self._topics = list(topics)
        self._processor = processor
        self._recorder = processor if isinstance(processor, RejectionRecorder) else None
        self._pool = pool
        self._dlq = dead_letters
        self._readiness = readiness
        self._store: OffsetStore = offset_store or KafkaOffsetStore()
        self._epoch_confirmed = epoch_confirmed
        self._on_committed = on_committed
        self._fetch_min_bytes = fetch_min_bytes
        self._max_backoff = max_backoff
        self._probe: Probe = probe or (lambda: writable_problem(pool, schema))
        self._client_factory = client_factory
        self._on_halt = on_halt
        self._lock = asyncio.Lock()
        self._skipped: Offsets = {}
        """Offsets past batches already recorded (or with nothing to record), not yet
        committed to Kafka."""
        self._skipped_since: float | None = None
        self._holding_applied = False
        """An applied batch's offsets are among the pending ones (they go sooner)."""
        self._busy = False
        """The last fetch brought records: the next batch may linger for more."""
        self._unchecked: set[TopicPartition] = set()
        self._unrefined: set[TopicPartition] = set()
        self._halted = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.processed = 0
        self.stats = ConsumerStats()

    async def start(self) -> None:
        self.consumer = self._client_factory(
            bootstrap_servers=self._settings.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="none",
            session_timeout_ms=self._settings.session_timeout_ms,
            heartbeat_interval_ms=self._settings.heartbeat_interval_ms,
            max_poll_interval_ms=600_000,
            max_partition_fetch_bytes=MAX_RECORD_BYTES + 64 * 1024,
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
            fetch_min_bytes=self._fetch_min_bytes,
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
            if not self.halted:
                with contextlib.suppress(Exception):
                    await self.flush_skipped(older_than=0.0)
            await self.consumer.stop()

    def halt(self, reason: str) -> None:
        """Stop consuming for good (a broker reset): nothing more is read or committed.

        `on_halt` hears of a halt the consumer found itself (the runner then
        halts the relay and the background jobs too)."""
        if self._halted.is_set():
            return
        log.error("consumer_halted", group=self.group, code=E_BROKER_RESET.code, reason=reason)
        self._readiness.hold(BROKER_EPOCH, reason)
        self._halted.set()
        if self._on_halt is not None:
            self._on_halt(reason)

    @property
    def halted(self) -> bool:
        return self._halted.is_set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

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
        """Consume until cancelled or halted; anything else that escapes is a crash."""
        assert self.consumer is not None, "start() first"
        while not self.halted:
            if self._unrefined:
                await self._refine_positions()
                continue
            try:
                fetched = await self.consumer.getmany(
                    timeout_ms=200, max_records=self._settings.max_poll_records
                )
            except NoOffsetForPartitionError as error:
                await self._no_stored_offset(error.args[0])
                continue
            except OffsetOutOfRangeError as error:
                # With auto_offset_reset="none" a real broker answers this when a
                # stored offset is past its log: the log was lost or replaced.
                self.halt(f"{E_BROKER_RESET.code}: stored offsets out of range: {error}")
                break
            except RecordTooLargeError as error:
                await self._oversize_unfetchable(error)
                continue
            if self.halted:
                break
            await self._check_positions()
            records = [RawRecord.of(r) for rs in fetched.values() for r in rs]
            busy, self._busy = self._busy, bool(records)
            if records and busy and self._settings.linger_ms:
                records += await self._linger(records)
            if records:
                records.sort(key=lambda r: (r.topic, r.partition, r.offset))
                await self._work_through(records)
            await self.flush_skipped()
        # Halted by a broker reset: leave the group now, so no metadata request
        # of this client auto-creates topics on the new broker. Never under the
        # batch lock: stopping may run the revocation callback, which takes it.
        await self.consumer.stop()

    async def _linger(self, fetched: list[RawRecord]) -> list[RawRecord]:
        """More records for a busy consumer's batch: whatever arrives within the linger.

        Only a consumer whose previous fetch also brought records lingers, so the first
        record after a quiet spell is applied at once; under load, batches grow and
        every per-batch cost (a transaction, a statement per table, an offset commit) is
        shared by more records."""
        assert self.consumer is not None
        room = self._settings.max_poll_records - len(fetched)
        if room <= 0:
            return []
        self.stats.lingers += 1
        await asyncio.sleep(self._settings.linger_ms / 1000)
        try:
            more = await self.consumer.getmany(timeout_ms=0, max_records=room)
        except (NoOffsetForPartitionError, OffsetOutOfRangeError, RecordTooLargeError):
            return []  # the next fetch meets it again and deals with it
        # A rebalance during the linger that handed a partition back to this consumer
        # starts it again from the committed offset: what the batch holds already is
        # fetched again, and must not be in it twice.
        held = {_at(record) for record in fetched}
        return [raw for rs in more.values() for r in rs if _at(raw := RawRecord.of(r)) not in held]

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
        await self._until_sent(
            lambda: self._dlq.send(
                topic=tp.topic,
                partition=tp.partition,
                offset=offset,
                code=E_DLQ_OVERSIZE.code,
                error="record over the fetch size",
            )
        )

    async def _refine_positions(self) -> None:
        """Retry the offset store's post-assignment step that failed in the listener."""
        assert self.consumer is not None
        partitions = self._unrefined & self.assignment()
        try:
            if partitions:
                await self._store.after_assigned(self.consumer, partitions)
        except Exception as error:
            if is_poison(error):
                raise
            await self._outage_pause(error, 0.5)
            return
        self._unrefined -= partitions
        self._readiness.release(OUTAGE)

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

    def _decode_all(self, records: list[RawRecord]) -> _FetchedBatch:
        decoded: list[DecodedRecord] = []
        poison: list[tuple[RawRecord, str, str]] = []
        for record in records:
            if not self._processor.handles(record):
                continue
            if record.value is not None and len(record.value) > MAX_RECORD_BYTES:
                poison.append((record, E_DLQ_OVERSIZE.code, f"{len(record.value)} bytes"))
                continue
            try:
                decoded.append(self._processor.decode(record))
            except PoisonRecord as bad:
                poison.append((record, bad.code, bad.reason))
            except Exception as error:
                if not is_data_error(error):
                    raise
                poison.append((record, E_DLQ_DECODE.code, repr(error)))
        return _FetchedBatch(records, decoded, poison)

    async def _work_through(self, records: list[RawRecord]) -> None:
        """Process one fetched batch, retrying through outages with capped backoff.

        The batch lock is held per attempt, not across the backoff, so a
        rebalance can hand partitions over during a long outage; every
        retry works only on the partitions still assigned.
        """
        batch = self._decode_all(records)
        backoff = 0.2
        while not self.halted:
            started = time.perf_counter()
            try:
                async with self._lock:
                    applied = await self._attempt(batch)
            except Exception as error:
                if is_poison(error):
                    raise  # a data error outside any record (a bug in the loop itself)
                backoff = await self._outage_pause(error, backoff)
                continue
            self._readiness.release(OUTAGE)
            elapsed = time.perf_counter() - started
            self.stats.batches += 1
            self.stats.records += applied
            self.stats.last_batch_records = applied
            self.stats.last_batch_seconds = elapsed
            self.stats.batch_seconds_total += elapsed
            return

    async def _outage_pause(self, error: BaseException, backoff: float) -> float:
        self.stats.outages += 1
        self._readiness.hold(OUTAGE, repr(error))
        log.warning("consumer_outage", group=self.group, error=repr(error), retry_in=backoff)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._halted.wait(), backoff)
        return min(backoff * 2, self._max_backoff)

    async def _attempt(self, batch: _FetchedBatch) -> int:
        assigned = self.assignment()
        rejected: list[Rejection] = []
        for record, code, reason in batch.poison:
            if record.tp not in assigned:
                continue
            if _at(record) not in batch.settled:
                await self._dead_letter(record, code, reason)
                batch.settled.add(_at(record))
            rejected.append((record, code, reason))
        live = batch.live(assigned)
        offsets = batch.offsets(assigned)
        if not offsets:
            return 0
        try:
            await self._transaction(live, offsets, rejected)
        except Exception as error:
            if not is_poison(error):
                raise
            log.warning("batch_failed_isolating", group=self.group, error=repr(error))
            await self._isolate(batch, live, offsets, rejected)
        self.processed += len(live)
        return len(live)

    async def _transaction(
        self,
        records: Sequence[DecodedRecord],
        offsets: Offsets,
        rejected: Sequence[Rejection] = (),
    ) -> None:
        # A batch of records this service does not handle records nothing: unless its
        # offsets live in the database, it needs no transaction, and its offsets ride
        # with the next commit (or `flush_skipped`): re-reading it after a crash or a
        # rebalance changes nothing.
        applied = bool(records or rejected or self._store.in_database)
        processed = applied and await self._record(records, offsets, rejected)
        self._hold(offsets, applied)
        if processed:
            # Only after a transaction that ran `process`: the actions an earlier,
            # rolled-back attempt queued are never run for a transaction without it.
            self._processor.committed()
        if applied and self._on_committed is not None:
            self._on_committed()

    def _hold(self, offsets: Offsets, applied: bool) -> None:
        """Keep `offsets` (their batch recorded, or with nothing to record) for the next
        coalesced Kafka commit."""
        for tp, offset in offsets.items():
            self._skipped[tp] = max(offset, self._skipped.get(tp, 0))
        if self._skipped_since is None:
            self._skipped_since = time.monotonic()
        self._holding_applied = self._holding_applied or applied

    async def flush_skipped(self, older_than: float | None = None) -> None:
        """Commit the pending offsets once the oldest waited `older_than` (by default
        `COMMIT_SECONDS` when an applied batch is among them, else
        `SKIPPED_COMMIT_SECONDS`)."""
        since = self._skipped_since
        if since is None or self.consumer is None:
            return
        if older_than is None:
            older_than = COMMIT_SECONDS if self._holding_applied else SKIPPED_COMMIT_SECONDS
        if time.monotonic() - since < older_than:
            return
        async with self._lock:
            await self._commit_pending()

    async def _commit_pending(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the pending offsets (of `only` those partitions); call under the lock."""
        assert self.consumer is not None
        pending = {tp: n for tp, n in self._skipped.items() if only is None or tp in only}
        if not pending:
            return
        for tp in pending:
            del self._skipped[tp]
        if not self._skipped:
            self._skipped_since, self._holding_applied = None, False
        await self._store.committed(self.consumer, pending)

    async def _record(
        self,
        records: Sequence[DecodedRecord],
        offsets: Offsets,
        rejected: Sequence[Rejection],
    ) -> bool:
        """Record one batch in one transaction; whether `process` ran in it."""
        for _attempt in range(MAX_CONFLICT_RETRIES + 1):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    pending = await self._store.begin(conn, list(records))
                    if pending:
                        await self._processor.process(conn, pending)
                    if rejected and self._recorder is not None:
                        await self._recorder.record_rejected(conn, rejected)
                    await self._store.store(conn, offsets)
                return bool(pending)
            except VersionConflict:
                continue
        raise ConflictBoundExceeded(f"{self.group}: conflicts past {MAX_CONFLICT_RETRIES}")

    async def _judgeable(self) -> None:
        problem = await self._probe()
        if problem is not None:
            raise DatabaseNotWritable(problem)

    async def _isolate(
        self,
        batch: _FetchedBatch,
        records: Sequence[DecodedRecord],
        offsets: Offsets,
        rejected: Sequence[Rejection],
    ) -> None:
        # Every transaction below stores an offset that may pass refused records, so each
        # records the refusals known so far with it: a crash between two of them never
        # leaves a refused record behind its committed offset without its record.
        rejected = list(rejected)
        await self._judgeable()
        for item in records:
            single = {item.raw.tp: item.raw.offset + 1}
            try:
                await self._transaction([item], single, rejected)
            except Exception as error:
                if not is_poison(error):
                    raise
                await self._judgeable()  # the database may have gone since the last probe
                await self._dead_letter(item.raw, E_DLQ_HANDLER.code, repr(error))
                rejected.append((item.raw, E_DLQ_HANDLER.code, repr(error)))
                batch.settled.add(_at(item.raw))
                await self._transaction([], single, rejected)
                continue
            batch.settled.add(_at(item.raw))
        # Offsets of records skipped or dead-lettered at decode time, with their record.
        await self._transaction([], offsets, rejected)

    async def _dead_letter(self, record: RawRecord, code: str, error: str) -> None:
        await self._dlq.send(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            code=code,
            error=error,
            record=record,
        )

    async def _until_sent(self, send: Callable[[], Awaitable[None]]) -> None:
        backoff = 0.2
        while not self.halted:
            try:
                await send()
            except Exception as failure:
                backoff = await self._outage_pause(failure, backoff)
                continue
            self._readiness.release(OUTAGE)
            return


def _next_offsets(records: Sequence[RawRecord]) -> Offsets:
    offsets: Offsets = {}
    for record in records:
        offsets[record.tp] = max(offsets.get(record.tp, 0), record.offset + 1)
    return offsets


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Wait for the in-flight batch, then commit what is pending for these
        # partitions: the next member starts where this one stopped.
        async with self._owner._lock:
            self._owner._unrefined -= set(revoked)
            if not self._owner.halted:
                with contextlib.suppress(Exception):
                    await self._owner._commit_pending(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        owner = self._owner
        assert owner.consumer is not None
        owner._store.on_assigned(owner.consumer, set(assigned))
        owner._unchecked |= set(assigned)
        try:
            await owner._store.after_assigned(owner.consumer, set(assigned))
        except Exception as error:
            # aiokafka swallows a listener's exception: hand the step to the
            # processing loop, which fetches nothing until it succeeds (retried
            # through an outage) or crashes on anything else.
            log.warning("after_assigned_failed", group=owner.group, error=repr(error))
            owner._unrefined |= set(assigned)
        owner._readiness.release(JOINING)
