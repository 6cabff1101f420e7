"""Payloads produced by ingress on ``awooop.ingress.events.v1``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, Field

from awooop.contracts.events.payloads.fields import (
    ChannelType,
    ChatId,
    PlatformSubjectId,
    ProviderEventId,
    Revisions,
)
from awooop.contracts.events.registry import register_payload, register_upcaster
from awooop.contracts.records.envelope import EventPayload


@register_payload("ingress.message_received", 2)
class MessageReceived(EventPayload):
    """A person wrote to an agent: one validated, de-duplicated inbound chat message.

    ``provider_event_id`` is the de-duplication id (unique per project and channel);
    ``received_at`` is when the bridge received it. ``agent_id`` is the agent the
    channel binding gives the chat, and ``revisions`` names that binding's revision.
    """

    channel_type: ChannelType
    provider_event_id: ProviderEventId
    platform_subject_id: PlatformSubjectId
    chat_id: ChatId
    text: str
    received_at: AwareDatetime
    agent_id: Annotated[str, Field(min_length=1, max_length=128)]
    revisions: Revisions


LEGACY_AGENT_ID = "demo-agent"
"""The only agent of the built-in catalogue that version 1 messages were answered by."""


@register_upcaster("ingress.message_received", 1)
def _binding_of_v1(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 1 came before bindings: every message went to the catalogue's one agent.
    return {**payload, "agent_id": LEGACY_AGENT_ID, "revisions": []}
