"""Telegram updates: the id check and the normalisation of a text message.

Telegram counts ``update_id`` per bot, so the bridge names an update
``<bot_id>:<update_id>``; the suffix must be the update's own id, or the
de-duplication key would not describe the payload it guards.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, TypeGuard

from pydantic import ValidationError

from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.records.inbound import InboundRecord
from awooop.contracts.records.parsing import describe_validation_error
from awooop.ingress.domain.bindings import Bindings, bound
from awooop.ingress.domain.messages import InboundMessage, InboundRefused, trace_of

MAX_STREAM_ID = 256
"""The envelope's ``stream_id`` limit, which ``<project>:telegram:<provider_event_id>`` must fit."""


def _is_int(value: object) -> TypeGuard[int]:
    # JSON true/false arrive as bool, a subclass of int: never an id.
    return isinstance(value, int) and not isinstance(value, bool)


def check_provider_event_id(provider_event_id: str, update_id: int) -> None:
    """Refuse an id that is not ``<numeric bot id>:<update_id>`` of this very update."""
    bot_id, separator, suffix = provider_event_id.rpartition(":")
    if not separator or suffix != str(update_id):
        raise InboundRefused(
            f"provider_event_id {provider_event_id!r} does not end in ':{update_id}', "
            "the update's update_id"
        )
    if not (bot_id.isascii() and bot_id.isdigit()):
        raise InboundRefused(
            f"provider_event_id {provider_event_id!r} is not '<bot_id>:<update_id>' "
            "with a numeric bot id"
        )


def _text_message(update: dict[str, Any], update_id: int) -> dict[str, Any]:
    message = update.get("message")
    if isinstance(message, dict):
        text = message.get("text")
        if isinstance(text, str) and text:
            return message
        carries = "a message without text"
    else:
        kinds = sorted(key for key in update if key != "update_id")
        carries = ", ".join(kinds) or "nothing"
    raise InboundRefused(
        f"telegram update {update_id} has no message.text (it carries {carries}): "
        "only text messages are handled"
    )


def _numeric_id(message: dict[str, Any], field: str) -> str:
    holder = message.get(field)
    value = holder.get("id") if isinstance(holder, dict) else None
    if not _is_int(value):
        raise InboundRefused(f"telegram message has no integer {field}.id")
    return str(value)


def normalise_telegram(record: InboundRecord, bindings: Bindings) -> InboundMessage:
    """Normalise a Telegram text-message update; :class:`InboundRefused` for anything else.

    The subject is the sender (``message.from.id``), the chat is ``message.chat.id``;
    ``platform_subject_id`` is ``<project>:telegram:<user id>``. The bot (the prefix of
    ``provider_event_id``) and the chat choose the binding, which must be one of the
    record's project; :class:`InboundUnbound` otherwise.
    """
    update = record.payload
    update_id = update.get("update_id")
    if not _is_int(update_id):
        raise InboundRefused("telegram update has no integer update_id")
    check_provider_event_id(record.provider_event_id, update_id)
    stream_id = ":".join((record.project_id, "telegram", record.provider_event_id))
    if len(stream_id) > MAX_STREAM_ID:
        raise InboundRefused(
            f"provider_event_id of {len(record.provider_event_id)} characters is too long "
            f"for a {MAX_STREAM_ID}-character stream id"
        )
    message = _text_message(update, update_id)
    user_id = _numeric_id(message, "from")
    chat_id = _numeric_id(message, "chat")
    bot_id = record.provider_event_id.rpartition(":")[0]
    binding = bound(
        bindings.telegram(bot_id, chat_id),
        record.project_id,
        f"telegram bot {bot_id} chat {chat_id}",
    )
    try:
        payload = MessageReceived(
            channel_type="telegram",
            provider_event_id=record.provider_event_id,
            platform_subject_id=f"{record.project_id}:telegram:{user_id}",
            chat_id=chat_id,
            text=message["text"],
            received_at=record.received_at.astimezone(UTC),
            agent_id=binding.agent_id,
            revisions=(binding.revision,),
        )
    except ValidationError as error:
        raise InboundRefused(describe_validation_error(error)) from error
    return InboundMessage(record.project_id, payload, trace_of(record))
