"""The per-event processor: an explicit table `event_type → handler`, behind the inbox.

Built on `EventProcessor`: the batch's event ids are claimed in the inbox in
one statement, and each record new to this table reaches its handler, in
partition-offset order, inside the consumer's transaction. A handler loads,
decides, and appends through its `HandlerContext`: no retries, logging context
or DLQ code of its own (the consumer owns those).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.logging import bind_context
from awooop.infra.postgres.event_store import NewEvent
from awooop.infra.processor import BatchContext, EventProcessor, decode_envelope

__all__ = ["Handler", "HandlerContext", "HandlerTable", "decode_envelope"]


class HandlerContext:
    """What one handler sees: the batch context and the record it handles."""

    def __init__(self, batch: BatchContext, record: RawRecord) -> None:
        self.conn = batch.conn
        self.record = record
        self._batch = batch

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the batch transaction committed (never if it rolls back)."""
        self._batch.after_commit(action)

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Append to the service's event store (and outbox) inside the batch transaction."""
        await self._batch.append(events)


Handler = Callable[[HandlerContext, Envelope[Any]], Awaitable[None]]


class HandlerTable(EventProcessor):
    """A BatchProcessor over envelopes, one handler per event type, idempotent on
    `event_id` through the inbox."""

    def __init__(
        self, name: str, handlers: Mapping[str, Handler], codec: EnvelopeCodec | None = None
    ) -> None:
        super().__init__(name, handlers.keys(), codec=codec)
        self._handlers = dict(handlers)

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        for item in records:
            envelope = item.body
            with bind_context(
                project_id=envelope.project_id,
                run_id=envelope.correlation_id,
                trace_id=envelope.trace_id,
            ):
                await self._handlers[envelope.event_type](
                    HandlerContext(context, item.raw), envelope
                )
