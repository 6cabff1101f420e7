"""The event-sourced processor: an explicit table `event_type → handler`, behind the inbox.

Each batch records its event ids in the inbox in one statement; only the
records new to this handler table reach their handlers, in partition-offset
order, inside the consumer's transaction. A handler loads, decides, and
appends through its `HandlerContext`: no retries, logging context or DLQ
code of its own (the consumer owns those).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from awooop.contracts.codec import EnvelopeCodec
from awooop.contracts.decode_errors import EnvelopeDecodeError
from awooop.contracts.envelope import Envelope
from awooop.contracts.headers import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.logging import bind_context
from awooop.infra.postgres import event_store, inbox
from awooop.infra.postgres.event_store import NewEvent


@dataclass
class HandlerContext:
    """What a handler sees: the batch transaction's connection and an append function."""

    conn: asyncpg.Connection
    record: RawRecord
    appended: list[NewEvent] = field(default_factory=list)
    post_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the batch transaction committed (never if it rolls back)."""
        self.post_commit.append(action)

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Append to the service's event store (and outbox) inside the batch transaction."""
        await event_store.append(self.conn, events)
        self.appended.extend(events)


Handler = Callable[[HandlerContext, Envelope[Any]], Awaitable[None]]


def decode_envelope(codec: EnvelopeCodec, record: RawRecord) -> DecodedRecord:
    """Decode an envelope record once, by its headers; what cannot be decoded is poison
    (`PoisonRecord` with the codec's error code and reason)."""
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


class HandlerTable:
    """A BatchProcessor over envelopes, idempotent on `event_id` through the inbox."""

    def __init__(
        self, name: str, handlers: Mapping[str, Handler], codec: EnvelopeCodec | None = None
    ) -> None:
        self.name = name
        self._handlers = dict(handlers)
        self._codec = codec or EnvelopeCodec()
        self.appended = 0
        self._post_commit: list[Callable[[], None]] = []

    def handles(self, record: RawRecord) -> bool:
        return record.header(HEADER_EVENT_TYPE) in self._handlers

    def decode(self, record: RawRecord) -> DecodedRecord:
        return decode_envelope(self._codec, record)

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        self._post_commit = []  # whatever an earlier, rolled-back attempt queued
        ids: list[UUID] = [r.body.event_id for r in records]
        new = await inbox.claim(conn, self.name, ids)
        for item in records:
            envelope = item.body
            if envelope.event_id not in new:
                continue
            new.discard(envelope.event_id)  # a duplicate inside one batch applies once
            context = HandlerContext(conn, item.raw)
            with bind_context(
                project_id=envelope.project_id,
                run_id=envelope.correlation_id,
                trace_id=envelope.trace_id,
            ):
                await self._handlers[envelope.event_type](context, envelope)
            self.appended += len(context.appended)
            self._post_commit.extend(context.post_commit)

    def committed(self) -> None:
        actions, self._post_commit = self._post_commit, []
        for action in actions:
            action()
