"""Payloads of the chat channels' way out.

``channel.outbound_requested`` is produced by the runtime on ``awooop.channel.outbound.v1``
(keyed by ``project_id:chat_id``): what must be said in a chat, and by when.
``channel.delivery_reported`` is produced by ingress's outbound delivery on
``awooop.channel.delivery.v1`` (same key): what became of it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from awooop.contracts.events.payloads.fields import (
    ChannelType,
    ChatId,
    ErrorCodeText,
    ProviderMessageId,
    ThreadId,
)
from awooop.contracts.events.payloads.ingress import Reason
from awooop.contracts.events.registry import register_payload, register_upcaster
from awooop.contracts.records.envelope import EventPayload

OutboundKind = Literal["interim", "final", "approval_request", "error"]
"""What a message is to the person: progress, the answer, a request to approve, a failure."""

DeliveryStatus = Literal["sent", "failed", "expired"]


MAX_OUTBOUND_TEXT = 16_384
"""The longest text one outbound message carries, in characters."""


class Button(BaseModel):
    """An inline button (Telegram inline keyboard, Slack Block Kit): ``value`` comes back in
    ``ingress.button_pressed``. Telegram's ``callback_data`` holds at most 64 bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Annotated[str, Field(min_length=1, max_length=64)]
    value: Annotated[str, Field(min_length=1, max_length=64)]


@register_payload("channel.outbound_requested", 2)
class OutboundRequested(EventPayload):
    """A message for one chat. ``deliver_before`` is when it stops being worth sending (the
    bridge reports it ``expired`` instead); ``run_id`` is the run it speaks for.

    ``thread_id`` and ``reply_to`` place it where the person wrote (a forum topic or Slack
    thread; the message it answers). ``buttons`` are one row of inline buttons.
    ``edit_of`` names an earlier outbound event whose delivered message this one
    replaces in place (``editMessageText`` / ``chat.update``) instead of posting anew.
    """

    run_id: uuid.UUID
    kind: OutboundKind
    channel_type: ChannelType
    chat_id: ChatId
    thread_id: ThreadId | None = None
    reply_to: ProviderMessageId | None = None
    text: Annotated[str, Field(min_length=1, max_length=MAX_OUTBOUND_TEXT)]
    buttons: Annotated[tuple[Button, ...], Field(max_length=8)] = ()
    edit_of: uuid.UUID | None = None
    deliver_before: AwareDatetime


@register_upcaster("channel.outbound_requested", 1)
def _unthreaded_v1(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 1 posted plain new messages at the top of the chat.
    return {**payload, "thread_id": None, "reply_to": None, "buttons": [], "edit_of": None}


@register_payload("channel.delivery_reported", 1)
class DeliveryReported(EventPayload):
    """What became of one outbound message: ``sent`` (with the provider's message ids, one
    per part when a long text was split), ``failed`` (``code`` and ``reason``: refused by
    the provider, unreachable until its deadline, or interrupted so that whether it
    reached the chat is unknown) or ``expired`` (its ``deliver_before`` passed first).
    ``attempts`` counts calls to the provider."""

    outbound_event_id: uuid.UUID
    run_id: uuid.UUID
    kind: OutboundKind
    channel_type: ChannelType
    chat_id: ChatId
    status: DeliveryStatus
    provider_message_ids: Annotated[tuple[ProviderMessageId, ...], Field(max_length=16)]
    attempts: Annotated[int, Field(ge=0)]
    code: ErrorCodeText | None
    reason: Reason | None
