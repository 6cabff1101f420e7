"""The envelopes ingress emits, one per inbound record, and where they are published.

An accepted record (a message, a button press, an ignored record) opens the inbound
stream of its provider event, ``<project>:<channel>:<provider_event_id>``. A duplicate
or a rejected record has a stream of its own named by its position on the inbound
topic, ``record:<partition>:<offset>:<timestamp>``: a record has one outcome, and
its position is what ingress keeps it unique by.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from awooop.contracts.events.payloads.ingress import DuplicateReceived, InboundRejected
from awooop.contracts.records.envelope import Envelope, EventPayload
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries import service_names
from awooop.ingress.domain.messages import InboundEvent

PRODUCER = service_names.INGRESS
ACTOR = f"service:{service_names.INGRESS}"
STREAM_TYPE = "inbound"
RECORD_STREAM_TYPE = "inbound_record"


def subject_key(message: InboundEvent) -> str:
    """The ``awooop.ingress.events.v1`` key, ``project_id:platform_subject_id``.

    One person's messages share a key, so they reach one runtime consumer in order. An
    ignored record with no person is keyed by its provider event instead.
    """
    subject = message.payload.platform_subject_id
    return f"{message.project_id}:{subject}" if subject else message.stream_id


def record_stream_id(partition: int, offset: int, timestamp: int) -> str:
    return f"record:{partition}:{offset}:{timestamp}"


def inbound_event(
    message: InboundEvent, *, event_id: uuid.UUID, occurred_at: datetime, trace_id: str
) -> Envelope[EventPayload]:
    """The first and only event of the record's inbound stream.

    A message's ``event_id`` becomes the id of the run it starts, so it is also the
    ``correlation_id``; nothing caused it but the outside world, so no ``causation_id``.
    """
    return new_envelope(
        message.payload,
        occurred_at=occurred_at,
        project_id=message.project_id,
        stream_type=STREAM_TYPE,
        stream_id=message.stream_id,
        stream_seq=1,
        trace_id=trace_id,
        correlation_id=str(event_id),
        actor=ACTOR,
        producer=PRODUCER,
        event_id=event_id,
    )


message_received = inbound_event
"""The name from the days when every accepted record was a message."""


def record_event(
    payload: DuplicateReceived | InboundRejected,
    *,
    project_id: str,
    stream_id: str,
    event_id: uuid.UUID,
    occurred_at: datetime,
    trace_id: str,
) -> Envelope[EventPayload]:
    """The event of a record that repeats an earlier one or was refused."""
    return new_envelope(
        payload,
        occurred_at=occurred_at,
        project_id=project_id,
        stream_type=RECORD_STREAM_TYPE,
        stream_id=stream_id,
        stream_seq=1,
        trace_id=trace_id,
        correlation_id=str(event_id),
        actor=ACTOR,
        producer=PRODUCER,
        event_id=event_id,
    )
