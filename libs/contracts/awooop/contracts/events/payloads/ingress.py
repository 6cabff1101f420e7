"""Payloads produced by ingress on ``awooop.ingress.events.v1``.

Every inbound record leaves exactly one of these: a message (``message_received``), a
button press (``button_pressed``), a record that must start nothing (``inbound_ignored``),
a repeat of an event already recorded (``duplicate_received``), or a record refused
(``inbound_rejected``, whose bytes stay in the DLQ). What people type travels as sent
in ``text`` (the agent needs it) with ``display_text`` beside it, redacted by ingress:
read models show only ``display_text``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from awooop.contracts.events.payloads.fields import (
    ChannelType,
    ChatId,
    ErrorCodeText,
    PlatformSubjectId,
    ProviderEventId,
    ProviderMessageId,
    Revisions,
    ThreadId,
)
from awooop.contracts.events.registry import register_payload, register_upcaster
from awooop.contracts.records.envelope import EventPayload

DISPLAY_TEXT_MAX = 16_384
"""``display_text`` is bounded (the redactor truncates to 16 KiB of UTF-8)."""

WITHHELD_DISPLAY_TEXT = "[withheld: recorded before display texts were redacted]"
"""What an upcast message of an older version shows: its text was never redacted, so
no read model may show it."""

AgentId = Annotated[str, Field(min_length=1, max_length=128)]
Reason = Annotated[str, Field(min_length=1, max_length=1024)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


AttachmentKind = Literal[
    "photo", "document", "video", "audio", "voice", "animation", "sticker", "video_note", "file"
]


class Attachment(_Part):
    """What a message carried besides text: metadata only, never the file's bytes.

    ``file_id`` is the provider's id (Telegram ``file_id``, Slack file ``id``); ``emoji``
    is a sticker's emoji.
    """

    kind: AttachmentKind
    file_id: Annotated[str, Field(min_length=1, max_length=256)]
    name: Annotated[str, Field(max_length=256)] | None = None
    mime_type: Annotated[str, Field(max_length=128)] | None = None
    size_bytes: Annotated[int, Field(ge=0)] | None = None
    emoji: Annotated[str, Field(max_length=32)] | None = None


class Entity(_Part):
    """A marked span of the text (Telegram ``entities``): ``offset`` and ``length`` count
    characters of ``text`` as Python indexes them (Telegram counts UTF-16 code units;
    ingress converts), and ``text`` is the span itself."""

    type: Annotated[str, Field(min_length=1, max_length=64)]
    offset: Annotated[int, Field(ge=0)]
    length: Annotated[int, Field(ge=1)]
    text: str


@register_payload("ingress.message_received", 3)
class MessageReceived(EventPayload):
    """A person wrote to an agent: one validated, de-duplicated inbound chat message.

    ``provider_event_id`` is the de-duplication id (unique per project and channel);
    ``received_at`` is when the bridge received it. ``agent_id`` is the agent the
    channel binding gives the chat, and ``revisions`` names that binding's revision.
    ``text`` is exactly what was sent (a media caption, or empty for a sticker);
    ``display_text`` is its redacted form. ``thread_id`` is the forum topic or Slack
    thread the message is in, ``message_id`` the provider's id of the message (replies
    thread under it). ``command`` is the bot command the text starts with (``/start@bot``
    gives ``start``); ``edited`` marks an edit an agent opted in to.
    """

    channel_type: ChannelType
    provider_event_id: ProviderEventId
    platform_subject_id: PlatformSubjectId
    chat_id: ChatId
    thread_id: ThreadId | None = None
    message_id: ProviderMessageId | None = None
    text: str
    display_text: Annotated[str, Field(max_length=DISPLAY_TEXT_MAX)]
    attachments: Annotated[tuple[Attachment, ...], Field(max_length=32)] = ()
    entities: Annotated[tuple[Entity, ...], Field(max_length=256)] = ()
    command: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    edited: bool = False
    received_at: AwareDatetime
    agent_id: AgentId
    revisions: Revisions


LEGACY_AGENT_ID = "demo-agent"
"""The only agent of the built-in catalogue that version 1 messages were answered by."""


@register_upcaster("ingress.message_received", 1)
def _binding_of_v1(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 1 came before bindings: every message went to the catalogue's one agent.
    return {**payload, "agent_id": LEGACY_AGENT_ID, "revisions": []}


@register_upcaster("ingress.message_received", 2)
def _plain_text_of_v2(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 2 knew text messages only, and no redacted form of them.
    return {
        **payload,
        "thread_id": None,
        "message_id": None,
        "display_text": WITHHELD_DISPLAY_TEXT,
        "attachments": [],
        "entities": [],
        "command": None,
        "edited": False,
    }


@register_payload("ingress.button_pressed", 1)
class ButtonPressed(EventPayload):
    """A person pressed a button of a message (Telegram ``callback_query``, Slack
    ``block_actions``). Never a message: it starts no run; the approval service reads it.

    ``value`` is the button's data; ``message_id`` the message that carried the button;
    ``callback_id`` the Telegram callback query id (to answer it), ``None`` on Slack.
    """

    channel_type: ChannelType
    provider_event_id: ProviderEventId
    platform_subject_id: PlatformSubjectId
    chat_id: ChatId
    thread_id: ThreadId | None
    message_id: ProviderMessageId | None
    value: Annotated[str, Field(max_length=2000)]
    callback_id: Annotated[str, Field(min_length=1, max_length=128)] | None
    received_at: AwareDatetime
    agent_id: AgentId
    revisions: Revisions


@register_payload("ingress.inbound_ignored", 1)
class InboundIgnored(EventPayload):
    """A well-formed record that must start nothing: a bot's message, an edit its agent did
    not opt in to, a kind of update no agent acts on. ``reason`` says which; the person
    and chat are named when the record has them."""

    channel_type: ChannelType
    provider_event_id: ProviderEventId
    platform_subject_id: PlatformSubjectId | None
    chat_id: ChatId | None
    reason: Reason
    display_text: Annotated[str, Field(max_length=DISPLAY_TEXT_MAX)]
    received_at: AwareDatetime


@register_payload("ingress.duplicate_received", 1)
class DuplicateReceived(EventPayload):
    """A record repeating a provider event already recorded (a bridge or Slack retry, a
    redelivery by the broker of another record): ``duplicate_of`` is the event the first
    one became. ``partition`` and ``offset`` say which record of the inbound topic."""

    channel_type: ChannelType
    provider_event_id: ProviderEventId
    duplicate_of: uuid.UUID
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]
    received_at: AwareDatetime


@register_payload("ingress.inbound_rejected", 1)
class InboundRejected(EventPayload):
    """A record ingress refused (malformed, unbound, a mismatched id, over-size): its bytes
    are in the DLQ; this is what the API shows of it. ``record_key`` is the record's key
    as text; ``channel_type`` and ``provider_event_id`` are what the record claimed, when
    it could be read (so not necessarily a known channel)."""

    code: ErrorCodeText
    reason: Reason
    record_key: Annotated[str, Field(max_length=512)] | None
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]
    channel_type: Annotated[str, Field(max_length=64)] | None
    provider_event_id: Annotated[str, Field(max_length=256)] | None
