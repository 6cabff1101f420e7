"""The one base of every service's BatchProcessor.

A processor names the event types it handles (a table in the service's
`handlers.py`), decodes each record once (the envelope codec unless the
service overrides `decode`), keeps only the records new to it (the inbox,
claimed by `event_id` in one statement per batch, unless the service has
its own de-duplication), applies them inside the consumer's transaction,
and runs the actions they queued once that transaction committed.

Retries, logging of failures, the DLQ and metrics stay in the consumer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.decode_errors import EnvelopeDecodeError
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.postgres import event_store, inbox
from awooop.infra.postgres.event_store import NewEvent


def decode_envelope(codec: EnvelopeCodec, record: RawRecord) -> DecodedRecord:
    """Decode an envelope record once, by its headers.

    Raises `PoisonRecord` (the codec's error code and reason) for what cannot be decoded.
    """
    if record.value is None:
        raise PoisonRecord("E-DLQ-DECODE", "record has no value")
    version_header = record.header(HEADER_SCHEMA_VERSION)
    try:
        version = int(version_header) if version_header else None
        envelope = codec.decode(record.value, version, record.header(HEADER_EVENT_TYPE))
    except ValueError as error:
        code = error.code if isinstance(error, EnvelopeDecodeError) else "E-DLQ-DECODE"
        reason = error.reason if isinstance(error, EnvelopeDecodeError) else str(error)
        raise PoisonRecord(code, reason) from error
    return DecodedRecord(record, envelope)


def first_seen(new: set[UUID], records: Sequence[DecodedRecord]) -> list[DecodedRecord]:
    """The records whose envelope id is in `new`, in order; a duplicate inside one batch
    is kept once (its first occurrence). Consumes `new`."""
    kept: list[DecodedRecord] = []
    for item in records:
        event_id = item.body.event_id
        if event_id in new:
            new.discard(event_id)
            kept.append(item)
    return kept


class BatchContext:
    """What `apply` sees: the batch transaction's connection, an append to the event store,
    and a queue of actions that run only once the transaction committed."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.appended: list[NewEvent] = []
        self.post_commit: list[Callable[[], None]] = []

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the batch transaction committed (never if it rolls back)."""
        self.post_commit.append(action)

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Append to the service's event store (and outbox) inside the batch transaction."""
        await event_store.append(self.conn, events)
        self.appended.extend(events)


class EventProcessor(ABC):
    """A BatchProcessor (name, handles, decode, process, committed) built one way.

    `handled` is the set of event types (read from the `event_type` header) this
    processor applies; `None` takes every record of its topics (a topic whose values
    are not envelopes). With `use_inbox`, `process` hands `apply` only the records
    whose `event_id` is new to the inbox row set of `name`; without it, `apply` gets
    the whole batch and the service de-duplicates by its own key. Subclasses implement
    `apply`; they may override `decode`.
    """

    def __init__(
        self,
        name: str,
        handled: Collection[str] | None,
        *,
        use_inbox: bool = True,
        codec: EnvelopeCodec | None = None,
    ) -> None:
        self.name = name
        self._handled = frozenset(handled) if handled is not None else None
        self._use_inbox = use_inbox
        self._codec = codec or EnvelopeCodec()
        self._post_commit: list[Callable[[], None]] = []
        self.appended = 0
        """Events appended by committed and rolled-back batches alike (a retry counts again)."""

    def handles(self, record: RawRecord) -> bool:
        """False for event types outside the table, skipped without decoding."""
        return self._handled is None or record.header(HEADER_EVENT_TYPE) in self._handled

    def decode(self, record: RawRecord) -> DecodedRecord:
        """The record's envelope; raises `PoisonRecord` for what can never be decoded."""
        return decode_envelope(self._codec, record)

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        """Apply the records new to this processor, in order, inside the caller's
        transaction; actions they queue wait for `committed`."""
        self._post_commit = []  # whatever an earlier, rolled-back attempt queued
        fresh = list(records)
        if self._use_inbox:
            ids: list[UUID] = [item.body.event_id for item in records]
            fresh = first_seen(await inbox.claim(conn, self.name, ids), records)
        if not fresh:
            return
        context = BatchContext(conn)
        await self.apply(context, fresh)
        self.appended += len(context.appended)
        self._post_commit = context.post_commit

    @abstractmethod
    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        """Apply `records` (new to this processor, in partition-offset order)."""

    def committed(self) -> None:
        """Run the actions queued by the batch that just committed."""
        actions, self._post_commit = self._post_commit, []
        for action in actions:
            action()


def envelopes_of(records: Sequence[DecodedRecord]) -> list[Envelope[Any]]:
    """The decoded envelopes of `records`, in order."""
    return [item.body for item in records]
