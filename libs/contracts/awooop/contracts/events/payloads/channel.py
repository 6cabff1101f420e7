"""Payloads produced by the runtime on ``awooop.channel.outbound.v1`` (keyed by
``project_id:chat_id``): what a bridge must say in a chat, and by when."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from awooop.contracts.events.payloads.fields import ChannelType, ChatId
from awooop.contracts.events.registry import register_payload
from awooop.contracts.records.envelope import EventPayload

OutboundKind = Literal["interim", "final", "approval_request", "error"]
"""What a message is to the person: progress, the answer, a request to approve, a failure."""


@register_payload("channel.outbound_requested", 1)
class OutboundRequested(EventPayload):
    """A message for one chat. ``deliver_before`` is when it stops being worth sending (the
    bridge reports it ``expired`` instead); ``run_id`` is the run it speaks for."""

    run_id: uuid.UUID
    kind: OutboundKind
    channel_type: ChannelType
    chat_id: ChatId
    text: Annotated[str, Field(min_length=1, max_length=16_384)]
    deliver_before: AwareDatetime
