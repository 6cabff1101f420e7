"""The ingress processor: inbound records in, one ``ingress.message_received`` per new message.

Built on the one processor base, without its envelope decode and without its inbox:
inbound records are not envelopes, so there is no event id to keep an inbox on. Every
record of the topic is handled (bad ones belong in the DLQ). The de-duplication key is
the provider's own id, recorded in
``provider_events`` by one statement per batch inside the batch transaction; the events
of the new messages are appended by one more, and their subjects provisioned by a third.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from uuid import UUID

from awooop.contracts.records.envelope import new_event_id, new_trace_id
from awooop.contracts.records.inbound import InboundRecordInvalid, parse_inbound
from awooop.contracts.registries.errors import E_INBOUND_INVALID
from awooop.contracts.registries.service_names import INGRESS
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.active import ContractView
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.events import to_new_event
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.processor import BatchContext, EventProcessor
from awooop.ingress.adapters import provider_events, subjects
from awooop.ingress.domain import (
    Binding,
    InboundMessage,
    InboundRefused,
    Unbound,
    message_received,
    normalise,
    subject_key,
)

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class IngressProcessor(EventProcessor):
    """The BatchProcessor of ``awooop.channel.inbound.v1``.

    ``accepted`` and ``duplicates`` count messages over the processor's life (a batch
    rolled back and retried counts again).
    """

    def __init__(
        self, contracts: ContractSource, *, clock: Clock = _utc_now, service: str = INGRESS
    ) -> None:
        super().__init__(service, None, use_inbox=False)
        self.contracts = contracts
        self._clock = clock
        self.accepted = 0
        self.duplicates = 0

    def decode(self, record: RawRecord) -> DecodedRecord:
        if record.value is None:
            raise PoisonRecord(E_INBOUND_INVALID.code, "inbound record has no value")
        try:
            inbound = parse_inbound(record.value)
        except InboundRecordInvalid as invalid:
            raise PoisonRecord(invalid.code, invalid.reason) from invalid
        try:
            message = normalise(inbound, ViewBindings(self.contracts.view))
        except InboundRefused as refused:
            raise PoisonRecord(refused.code, refused.reason) from refused
        return DecodedRecord(record, message)

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        candidates = _first_of_each([item.body for item in records])
        new = await provider_events.claim_new(context.conn, candidates)
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
        await context.append(events)
        await subjects.provision(context.conn, accepted)
        self.accepted += len(accepted)


class ViewBindings:
    """The ingress domain's binding lookup over the service's live contract view."""

    def __init__(self, view: ContractView) -> None:
        self._view = view

    def telegram(self, bot_id: str, chat_id: str) -> Binding | Unbound:
        found = self._view.telegram_binding(bot_id, chat_id)
        if found is None:
            return Unbound("no active channel_binding")
        agent_id = found.document.agent_id
        if self._view.agent(found.project_id, agent_id) is None:
            return Unbound(f"its binding {found.ref} names agent {agent_id!r}, not active")
        return Binding(found.project_id, agent_id, found.ref)


def _first_of_each(messages: Sequence[InboundMessage]) -> list[tuple[InboundMessage, UUID]]:
    """One candidate per message in batch order, each with a proposed event id."""
    seen: set[tuple[str, str, str]] = set()
    candidates = []
    for message in messages:
        if message.dedup_key not in seen:
            seen.add(message.dedup_key)
            candidates.append((message, new_event_id()))
    return candidates
