"""The ingress processor: every inbound record in, exactly one ingress event out.

Built on the one processor base, without its envelope decode and without its inbox:
inbound records are not envelopes, so there is no event id to keep an inbox on. A
record's outcome is one of: the event it became (a message, a button press, an ignored
record), a duplicate of an earlier provider event, or a rejection (its bytes in the
DLQ, its code and reason here). Two keys make that exact under redelivery, both claimed
by one statement per batch inside the batch transaction: the record's position on the
inbound topic (``inbound_records``: a redelivered record leaves no second trace) and
the provider's own id (``provider_events``: a repeated provider event starts nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from uuid import UUID

import asyncpg

from awooop.contracts.events.payloads.ingress import DuplicateReceived, InboundRejected
from awooop.contracts.families.channel_binding import ChannelBinding
from awooop.contracts.records.envelope import PROJECT_ID_PATTERN, new_event_id, new_trace_id
from awooop.contracts.records.inbound import InboundRecordInvalid, parse_inbound
from awooop.contracts.registries.errors import E_INBOUND_INVALID
from awooop.contracts.registries.service_names import INGRESS
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.active import ContractView, SignedRevision
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.events import to_new_event
from awooop.infra.kafka.consumer import Rejection
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.postgres import event_store
from awooop.infra.postgres.event_store import NewEvent
from awooop.infra.processor import BatchContext, EventProcessor
from awooop.ingress.adapters import inbound_records, provider_events, subjects
from awooop.ingress.domain import Binding, InboundEvent, InboundRefused, Unbound, normalise
from awooop.ingress.domain.events import (
    inbound_event,
    record_event,
    record_stream_id,
    subject_key,
)
from awooop.security.redaction import redact_text

Clock = Callable[[], dt.datetime]

_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_REASON_LIMIT = 1024


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class IngressProcessor(EventProcessor):
    """The BatchProcessor of ``awooop.channel.inbound.v1``.

    The counters (``accepted``, ``duplicates``, ``rejected``) count records over the
    processor's life (a batch rolled back and retried counts again).
    """

    def __init__(
        self, contracts: ContractSource, *, clock: Clock = _utc_now, service: str = INGRESS
    ) -> None:
        super().__init__(service, None, use_inbox=False)
        self.contracts = contracts
        self._clock = clock
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0

    def decode(self, record: RawRecord) -> DecodedRecord:
        if record.value is None:
            raise PoisonRecord(E_INBOUND_INVALID.code, "inbound record has no value")
        try:
            inbound = parse_inbound(record.value)
        except InboundRecordInvalid as invalid:
            raise PoisonRecord(invalid.code, invalid.reason) from invalid
        try:
            event = normalise(inbound, ViewBindings(self.contracts.view))
        except InboundRefused as refused:
            raise PoisonRecord(refused.code, refused.reason) from refused
        return DecodedRecord(record, event)

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        proposed = [(item.raw, new_event_id()) for item in records]
        fresh = await inbound_records.claim(context.conn, proposed)
        batch = [
            (item.raw, item.body, event_id)
            for item, (_, event_id) in zip(records, proposed, strict=True)
            if inbound_records.position_of(item.raw) in fresh
        ]
        if not batch:
            return
        first = _first_of_each(batch)
        new = await provider_events.claim_new(context.conn, list(first.values()))
        earlier = await provider_events.first_event_ids(
            context.conn, [key for key, (_, event_id) in first.items() if event_id not in new]
        )
        occurred_at = self._clock()
        events: list[NewEvent] = []
        accepted: list[tuple[InboundEvent, UUID]] = []
        for raw, event, event_id in batch:
            if event_id in new:
                accepted.append((event, event_id))
                trace_id = event.trace_id or new_trace_id()
                envelope = inbound_event(
                    event, event_id=event_id, occurred_at=occurred_at, trace_id=trace_id
                )
                events.append(to_new_event(envelope, Topics.INGRESS_EVENTS, subject_key(event)))
                continue
            original = earlier.get(event.dedup_key) or first[event.dedup_key][1]
            events.append(self._duplicate(raw, event, event_id, original, occurred_at))
        await context.append(events)
        await subjects.provision(
            context.conn, [(event, event_id) for event, event_id in accepted if event.starts_run]
        )
        self.accepted += len(accepted)
        self.duplicates += len(batch) - len(accepted)

    def _duplicate(
        self,
        raw: RawRecord,
        event: InboundEvent,
        event_id: UUID,
        original: UUID,
        occurred_at: dt.datetime,
    ) -> NewEvent:
        payload = DuplicateReceived(
            channel_type=event.payload.channel_type,
            provider_event_id=event.payload.provider_event_id,
            duplicate_of=original,
            partition=raw.partition,
            offset=raw.offset,
            received_at=event.payload.received_at,
        )
        envelope = record_event(
            payload,
            project_id=event.project_id,
            stream_id=record_stream_id(*inbound_records.position_of(raw)),
            event_id=event_id,
            occurred_at=occurred_at,
            trace_id=event.trace_id or new_trace_id(),
        )
        return to_new_event(envelope, Topics.INGRESS_EVENTS, subject_key(event))

    async def record_rejected(
        self, conn: asyncpg.Connection, rejected: Sequence[Rejection]
    ) -> None:
        """Record each refused record that names a project as ``ingress.inbound_rejected``.

        The project is the record's own ``project_id`` when its value is a readable JSON
        object naming one, else the first part of its key (``project_id:provider_event_id``,
        the topic's key); a record naming none stays in the DLQ alone.
        """
        attributed = [
            (record, code, reason, project)
            for record, code, reason in rejected
            if (project := _project_of(record)) is not None
        ]
        if not attributed:
            return
        proposed = [(record, new_event_id()) for record, *_ in attributed]
        fresh = await inbound_records.claim(conn, proposed, rejected=True)
        occurred_at = self._clock()
        events = []
        for (record, code, reason, project), (_, event_id) in zip(
            attributed, proposed, strict=True
        ):
            position = inbound_records.position_of(record)
            if position not in fresh:
                continue
            envelope = record_event(
                _rejection(record, code, reason),
                project_id=project,
                stream_id=record_stream_id(*position),
                event_id=event_id,
                occurred_at=occurred_at,
                trace_id=new_trace_id(),
            )
            key = (record.key or b"").decode("utf-8", "replace")
            events.append(to_new_event(envelope, Topics.INGRESS_EVENTS, key))
        await event_store.append(conn, events)
        self.rejected += len(events)


def _project_of(record: RawRecord) -> str | None:
    claimed = _json_object(record.value).get("project_id")
    if isinstance(claimed, str) and _PROJECT_ID.fullmatch(claimed):
        return claimed
    if not record.key:
        return None
    project = record.key.split(b":", 1)[0].decode("ascii", "replace")
    return project if _PROJECT_ID.fullmatch(project) else None


def _json_object(value: bytes | None) -> dict[str, object]:
    if not value:
        return {}
    try:
        body = json.loads(value)
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def _rejection(record: RawRecord, code: str, reason: str) -> InboundRejected:
    """What may be shown of a refused record: never its bytes, a redacted reason."""
    key = (record.key or b"").decode("utf-8", "replace")
    claimed = _claimed_fields(record.value)
    return InboundRejected(
        code=code,
        reason=redact_text(reason, limit=_REASON_LIMIT) or code,
        record_key=redact_text(key, limit=512) or None,
        partition=record.partition,
        offset=record.offset,
        channel_type=claimed.get("channel_type"),
        provider_event_id=claimed.get("provider_event_id"),
    )


def _claimed_fields(value: bytes | None) -> dict[str, str]:
    """``channel_type`` and ``provider_event_id`` as the record claims them, when it is a
    readable JSON object at all (bounded, redacted: a refused record is untrusted)."""
    body = _json_object(value)
    limits = {"channel_type": 64, "provider_event_id": 256}
    return {
        field: redact_text(text, limit=limit)
        for field, limit in limits.items()
        if isinstance(text := body.get(field), str) and text
    }


class ViewBindings:
    """The ingress domain's binding lookup over the service's live contract view."""

    def __init__(self, view: ContractView) -> None:
        self._view = view

    def telegram(self, bot_id: str, chat_id: str) -> Binding | Unbound:
        found = self._view.telegram_binding(bot_id, chat_id)
        return self._agent_of(found)

    def slack(self, team_id: str, app_id: str, channel_id: str) -> Binding | Unbound:
        found = self._view.slack_binding(team_id, app_id, channel_id)
        return self._agent_of(found)

    def _agent_of(self, found: SignedRevision[ChannelBinding] | None) -> Binding | Unbound:
        if found is None:
            return Unbound("no active channel_binding")
        agent_id = found.document.agent_id
        agent = self._view.agent(found.project_id, agent_id)
        if agent is None:
            return Unbound(
                f"its binding {found.ref} names agent {agent_id!r}, not active", found.project_id
            )
        accepts_edits = getattr(agent.document, "edits", "ignore") == "as_message"
        return Binding(found.project_id, agent_id, found.ref, accepts_edits)


def _first_of_each(
    batch: Sequence[tuple[RawRecord, InboundEvent, UUID]],
) -> dict[tuple[str, str, str], tuple[InboundEvent, UUID]]:
    """The first record of each provider event in batch order, with its proposed id."""
    first: dict[tuple[str, str, str], tuple[InboundEvent, UUID]] = {}
    for _, event, event_id in batch:
        first.setdefault(event.dedup_key, (event, event_id))
    return first
