"""The ingress processor: inbound records in, one ``ingress.message_received`` per new message.

Not a handler table: inbound records are not envelopes, so there is no event id to keep
an inbox on. The de-duplication key is the provider's own id, recorded in
``provider_events`` by one statement per batch inside the batch transaction; the events
of the new messages are appended by one more, and their subjects provisioned by a third.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from uuid import UUID

import asyncpg

from awooop.contracts.envelope import new_event_id, new_trace_id
from awooop.contracts.errors import E_INBOUND_INVALID
from awooop.contracts.inbound import InboundRecordInvalid, parse_inbound
from awooop.contracts.service_names import INGRESS
from awooop.contracts.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.postgres import event_store
from awooop.ingress.adapters import provider_events, subjects
from awooop.ingress.domain import (
    InboundMessage,
    InboundRefused,
    message_received,
    normalise,
    subject_key,
)

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class IngressProcessor:
    """The BatchProcessor of ``awooop.channel.inbound.v1``.

    ``accepted`` and ``duplicates`` count messages over the processor's life (a batch
    rolled back and retried counts again).
    """

    name = INGRESS

    def __init__(self, *, clock: Clock = _utc_now) -> None:
        self._clock = clock
        self.accepted = 0
        self.duplicates = 0

    def handles(self, record: RawRecord) -> bool:
        # Every inbound record is ingress's business; bad ones belong in the DLQ.
        return True

    def decode(self, record: RawRecord) -> DecodedRecord:
        if record.value is None:
            raise PoisonRecord(E_INBOUND_INVALID.code, "inbound record has no value")
        try:
            inbound = parse_inbound(record.value)
        except InboundRecordInvalid as invalid:
            raise PoisonRecord(invalid.code, invalid.reason) from invalid
        try:
            message = normalise(inbound)
        except InboundRefused as refused:
            raise PoisonRecord(E_INBOUND_INVALID.code, refused.reason) from refused
        return DecodedRecord(record, message)

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        candidates = _first_of_each([item.body for item in records])
        new = await provider_events.claim_new(conn, candidates)
        accepted = [(message, event_id) for message, event_id in candidates if event_id in new]
        self.duplicates += len(records) - len(accepted)
        if not accepted:
            return
        occurred_at = self._clock()
        events = []
        for message, event_id in accepted:
            envelope = message_received(
                message,
                event_id=event_id,
                occurred_at=occurred_at,
                trace_id=message.trace_id or new_trace_id(),
            )
            events.append(to_new_event(envelope, Topics.INGRESS_EVENTS, subject_key(message)))
        await event_store.append(conn, events)
        await subjects.provision(conn, accepted)
        self.accepted += len(accepted)

    def committed(self) -> None:
        # The consumer wakes the relay after each commit; nothing else waits on ingress.
        return None


def _first_of_each(messages: Sequence[InboundMessage]) -> list[tuple[InboundMessage, UUID]]:
    """One candidate per message in batch order, each with a proposed event id."""
    seen: set[tuple[str, str, str]] = set()
    candidates = []
    for message in messages:
        if message.dedup_key not in seen:
            seen.add(message.dedup_key)
            candidates.append((message, new_event_id()))
    return candidates
