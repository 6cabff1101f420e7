"""The envelope ingress emits for a new message, and where it is published."""

from __future__ import annotations

import uuid
from datetime import datetime

from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries import service_names
from awooop.ingress.domain.messages import InboundMessage

PRODUCER = service_names.INGRESS
ACTOR = f"service:{service_names.INGRESS}"
STREAM_TYPE = "inbound"


def subject_key(message: InboundMessage) -> str:
    """The ``awooop.ingress.events.v1`` key, ``project_id:platform_subject_id``.

    One person's messages share a key, so they reach one runtime consumer in order.
    """
    return f"{message.project_id}:{message.payload.platform_subject_id}"


def message_received(
    message: InboundMessage, *, event_id: uuid.UUID, occurred_at: datetime, trace_id: str
) -> Envelope[MessageReceived]:
    """The first and only event of the message's inbound stream.

    Its ``event_id`` becomes the id of the run it starts, so it is also the
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
