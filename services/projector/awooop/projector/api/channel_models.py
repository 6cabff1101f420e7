"""The response shapes of the channel read models (published in the OpenAPI document):
inbound channel events, and outbound messages with their delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from awooop.projector.domain.channel_events import ChannelEventKind, ChannelOutcome


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ChannelEvent(_Frozen):
    """One inbound record as ingress recorded it, and what became of it. Text is only ever
    the redacted `display_text`, never what the person sent."""

    event_id: uuid.UUID = Field(description="the ingress event's id")
    kind: ChannelEventKind
    outcome: ChannelOutcome = Field(
        description="run_started (run_id), busy (busy_with), queued (queued_on), received "
        "(nothing known yet), button_pressed, ignored (reason), duplicate_of (duplicate_of), "
        "rejected (code, reason)"
    )
    channel_type: str | None = Field(description="null for a rejected record that named none")
    provider_event_id: str | None
    platform_subject_id: str | None
    chat_id: str | None
    thread_id: str | None = Field(description="the forum topic or Slack thread")
    message_id: str | None = Field(description="the provider's id of the message")
    display_text: str | None = Field(
        description="redacted: a message's or ignored record's text, a button's data"
    )
    reason: str | None = Field(description="why it was ignored or rejected (redacted)")
    code: str | None = Field(description="the error code of a rejected record")
    record_key: str | None = Field(description="a rejected record's key (redacted)")
    duplicate_of: uuid.UUID | None = Field(description="the event the first such record became")
    record_partition: int | None = Field(description="where a duplicate or rejected record was")
    record_offset: int | None
    received_at: datetime | None = Field(description="when the bridge received it")
    occurred_at: datetime = Field(description="when ingress recorded it")
    run_id: uuid.UUID | None = Field(description="the run the message started (its own id)")
    queued_on: uuid.UUID | None = Field(description="the active run the message waited behind")
    busy_with: uuid.UUID | None = Field(description="the active run that refused the message")


class ChannelEventPage(_Frozen):
    items: list[ChannelEvent] = Field(description="newest first (occurred_at, then event_id)")


class OutboundMessage(_Frozen):
    """One message a run asked a bridge to send, its text redacted, and its delivery.

    The request's fields are null while only the delivery report is projected; the
    delivery's are null (and `provider_message_ids` empty) until a bridge reports it."""

    event_id: uuid.UUID
    kind: Literal["interim", "final", "approval_request", "error"]
    channel_type: str
    chat_id: str
    thread_id: str | None = Field(description="the forum topic or Slack thread it goes to")
    reply_to: str | None = Field(description="the provider's id of the message it answers")
    text: str | None = Field(description="redacted")
    button_labels: list[str] = Field(description="its inline buttons' labels (redacted)")
    edit_of: uuid.UUID | None = Field(description="the outbound message it replaces in place")
    deliver_before: datetime | None = Field(description="after this it is dropped as expired")
    occurred_at: datetime | None
    status: Literal["sent", "failed", "expired"] | None = Field(
        description="null until a bridge reports the delivery"
    )
    provider_message_ids: list[str] = Field(description="one per part of a sent message")
    attempts: int | None = Field(description="calls made to the provider")
    code: str | None = Field(description="why it failed or expired (E-DELIVERY-…)")
    reason: str | None = Field(description="redacted")
    reported_at: datetime | None
