"""What each event says about an ingress event's `channel_events` row (channel_events.py).

Ingress events give the row its channel columns. What a person wrote reaches the row
only as `display_text`, which ingress redacted; free text ingress did not write for
display (a button's data, a reason, a record's key) is redacted here before it is
kept. Run events give the runtime's one fact about a message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.projector.domain.channel_events import ChannelEventRow
from awooop.security.redaction import redact_text

MESSAGE_RECEIVED = "ingress.message_received"
CHANNEL_ONLY_EVENT_TYPES = frozenset(
    {
        "ingress.button_pressed",
        "ingress.inbound_ignored",
        "ingress.duplicate_received",
        "ingress.inbound_rejected",
    }
)
"""Ingress events that belong to no run: they fold into `channel_events` alone."""


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact_text(text)


def _row(e: Envelope[Any], **columns: Any) -> ChannelEventRow:
    return ChannelEventRow(e.project_id, e.event_id, occurred_at=e.occurred_at, **columns)


def _message(e: Envelope[Any]) -> ChannelEventRow:
    p = e.payload
    return _row(
        e,
        kind="message",
        channel_type=p.channel_type,
        provider_event_id=p.provider_event_id,
        platform_subject_id=p.platform_subject_id,
        chat_id=p.chat_id,
        thread_id=p.thread_id,
        message_id=p.message_id,
        display_text=p.display_text,
        received_at=p.received_at,
    )


def _button(e: Envelope[Any]) -> ChannelEventRow:
    p = e.payload
    return _row(
        e,
        kind="button",
        channel_type=p.channel_type,
        provider_event_id=p.provider_event_id,
        platform_subject_id=p.platform_subject_id,
        chat_id=p.chat_id,
        thread_id=p.thread_id,
        message_id=p.message_id,
        display_text=redact_text(p.value),
        received_at=p.received_at,
    )


def _ignored(e: Envelope[Any]) -> ChannelEventRow:
    p = e.payload
    return _row(
        e,
        kind="ignored",
        channel_type=p.channel_type,
        provider_event_id=p.provider_event_id,
        platform_subject_id=p.platform_subject_id,
        chat_id=p.chat_id,
        display_text=p.display_text,
        reason=redact_text(p.reason),
        received_at=p.received_at,
    )


def _duplicate(e: Envelope[Any]) -> ChannelEventRow:
    p = e.payload
    return _row(
        e,
        kind="duplicate",
        channel_type=p.channel_type,
        provider_event_id=p.provider_event_id,
        duplicate_of=p.duplicate_of,
        record_partition=p.partition,
        record_offset=p.offset,
        received_at=p.received_at,
    )


def _rejected(e: Envelope[Any]) -> ChannelEventRow:
    p = e.payload
    return _row(
        e,
        kind="rejected",
        channel_type=_redacted(p.channel_type),
        provider_event_id=_redacted(p.provider_event_id),
        code=p.code,
        reason=redact_text(p.reason),
        record_key=_redacted(p.record_key),
        record_partition=p.partition,
        record_offset=p.offset,
    )


def _run_of(e: Envelope[Any]) -> uuid.UUID:
    return uuid.UUID(e.correlation_id)


def _started(e: Envelope[Any]) -> ChannelEventRow:
    return ChannelEventRow(e.project_id, e.payload.trigger_event_id, run_id=_run_of(e))


def _queued(e: Envelope[Any]) -> ChannelEventRow:
    return ChannelEventRow(e.project_id, e.payload.message_event_id, queued_on=_run_of(e))


def _busy(e: Envelope[Any]) -> ChannelEventRow:
    return ChannelEventRow(e.project_id, e.payload.message_event_id, busy_with=_run_of(e))


CHANNEL_FACTS: dict[str, Callable[[Envelope[Any]], ChannelEventRow]] = {
    MESSAGE_RECEIVED: _message,
    "ingress.button_pressed": _button,
    "ingress.inbound_ignored": _ignored,
    "ingress.duplicate_received": _duplicate,
    "ingress.inbound_rejected": _rejected,
    "run.started": _started,
    "run.message_queued": _queued,
    "run.message_rejected": _busy,
}
"""Every event type that says something about an ingress event's row, and what it says."""
