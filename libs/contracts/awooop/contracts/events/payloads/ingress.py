"""Payloads produced by ingress on ``awooop.ingress.events.v1``."""

from __future__ import annotations

from pydantic import AwareDatetime

from awooop.contracts.events.payloads.fields import (
    ChannelType,
    ChatId,
    PlatformSubjectId,
    ProviderEventId,
)
from awooop.contracts.events.registry import register_payload
from awooop.contracts.records.envelope import EventPayload


@register_payload("ingress.message_received", 1)
class MessageReceived(EventPayload):
    """A person wrote to an agent: one validated, de-duplicated inbound chat message.

    ``provider_event_id`` is the de-duplication id (unique per project and channel);
    ``received_at`` is when the bridge received it.
    """

    channel_type: ChannelType
    provider_event_id: ProviderEventId
    platform_subject_id: PlatformSubjectId
    chat_id: ChatId
    text: str
    received_at: AwareDatetime
