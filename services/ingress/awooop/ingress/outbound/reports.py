"""The ``channel.delivery_reported`` envelope of one outbound message, and its topic key."""

from __future__ import annotations

import datetime as dt
from typing import Any

from awooop.contracts.events.payloads.channel import DeliveryReported, OutboundRequested
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.ingress.outbound.retry import DeliveryOutcome

STREAM_TYPE = "delivery"
REASON_LIMIT = 1024


def delivery_stream_id(outbound_event_id: object) -> str:
    """A delivery is a one-event stream named after the outbound event it answers."""
    return f"delivery:{outbound_event_id}"


def chat_key(request: Envelope[OutboundRequested]) -> str:
    """The key of both channel topics, ``project_id:chat_id``: a chat's messages and
    their reports stay in order on one partition."""
    return f"{request.project_id}:{request.payload.chat_id}"


def delivery_reported(
    request: Envelope[OutboundRequested],
    outcome: DeliveryOutcome,
    *,
    occurred_at: dt.datetime,
    service: str,
) -> Envelope[DeliveryReported]:
    """The report of `request`: caused by it, in its trace and its run's correlation."""
    payload = request.payload
    reason = outcome.reason
    if reason is not None and len(reason) > REASON_LIMIT:
        reason = reason[: REASON_LIMIT - 1] + "…"
    report = DeliveryReported(
        outbound_event_id=request.event_id,
        run_id=payload.run_id,
        kind=payload.kind,
        channel_type=payload.channel_type,
        chat_id=payload.chat_id,
        status=outcome.status,
        provider_message_ids=outcome.provider_message_ids,
        attempts=outcome.attempts,
        code=outcome.code,
        reason=reason,
    )
    return new_envelope(
        report,
        occurred_at=occurred_at,
        project_id=request.project_id,
        stream_type=STREAM_TYPE,
        stream_id=delivery_stream_id(request.event_id),
        stream_seq=1,
        trace_id=request.trace_id,
        correlation_id=request.correlation_id,
        causation_id=str(request.event_id),
        actor=f"service:{service}",
        producer=service,
    )


def summary(outcome: DeliveryOutcome) -> dict[str, Any]:
    """What a log line may say of an outcome: never the text, never a token."""
    return {
        "status": outcome.status,
        "attempts": outcome.attempts,
        "code": outcome.code,
        "parts": len(outcome.provider_message_ids),
    }
