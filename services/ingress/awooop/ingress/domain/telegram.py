"""Telegram updates: the id check, and the one event each kind of update becomes.

- Telegram counts ``update_id`` per bot, so the bridge names an update
  ``<bot_id>:<update_id>``; the suffix must be the update's own id, or the
  de-duplication key would not describe the payload it guards. The bot id and the
  chat choose the binding; the subject is ``<project>:telegram:<sender id>``.
- ``message`` and ``channel_post`` become a ``MessageReceived``; ``edited_message``
  and ``edited_channel_post`` too, with ``edited`` set, when the agent opted in to
  edits (its contract's ``edits: as_message``), else they are ignored naming the
  agent. ``callback_query`` becomes a ``ButtonPressed`` (``value`` is its ``data``,
  the chat and message those of the message that carried the button). Every other
  kind (``my_chat_member``, ``poll``, ``inline_query``, …) is ignored, naming it.
- A kind an agent acts on is bound first, so a chat no binding covers is refused
  (``InboundUnbound``) whatever the record says; then a bot's message, an edit its
  agent does not take, and a message with no text, caption or attachment (a service
  message: ``new_chat_members``, ``pinned_message``, …) are ignored with the reason,
  naming the sender and the chat. Any other kind is ignored before any binding is
  asked, naming no one.
- ``callback_query``: see :mod:`~awooop.ingress.domain.telegram_callbacks`; reading a
  message (sender, topic, text, entities, attachments): see
  :mod:`~awooop.ingress.domain.telegram_parts`.
"""

from __future__ import annotations

from typing import Any

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain import json_fields
from awooop.ingress.domain.bindings import Bindings, bound
from awooop.ingress.domain.inbound_payloads import (
    edit_ignored_reason,
    ignored_event,
    ignored_message,
    message_event,
)
from awooop.ingress.domain.messages import InboundEvent, InboundRefused
from awooop.ingress.domain.telegram_callbacks import button_event_of
from awooop.ingress.domain.telegram_parts import carried, read_message, sender

EDITED = {
    "message": False,
    "channel_post": False,
    "edited_message": True,
    "edited_channel_post": True,
}
"""The kinds of update that carry a message, and whether it is an edit."""

ACTED_ON = (*EDITED, "callback_query")

BOT_MESSAGE = "a bot's message (from.is_bot): only people start runs"


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


def _kind(update: dict[str, Any], update_id: int) -> tuple[str | None, list[str]]:
    kinds = [key for key in update if key != "update_id"]
    known = [kind for kind in kinds if kind in ACTED_ON]
    if len(known) > 1:
        raise InboundRefused(
            f"telegram update {update_id} carries {json_fields.names(known)}: "
            "an update is of one kind"
        )
    return (known[0] if known else None), kinds


def normalise_telegram(record: InboundRecord, bindings: Bindings) -> InboundEvent:
    """The event a Telegram update becomes; :class:`InboundRefused` when it cannot be
    one (:class:`InboundUnbound` when no binding of the record's project covers the
    bot's chat)."""
    update = record.payload
    update_id = update.get("update_id")
    if not json_fields.is_int(update_id):
        raise InboundRefused("telegram update has no integer update_id")
    check_provider_event_id(record.provider_event_id, update_id)
    bot_id = record.provider_event_id.rpartition(":")[0]
    kind, kinds = _kind(update, update_id)
    if kind is None:
        what = f"of kind {json_fields.names(kinds)}" if kinds else "with only its update_id"
        return ignored_event(record, f"a telegram update {what}: no agent acts on it")
    body = json_fields.obj(update, kind, "telegram update")
    if body is None:
        raise InboundRefused(f"telegram update.{kind} is not an object")
    if kind == "callback_query":
        return button_event_of(record, bindings, bot_id, body)
    return _message(record, bindings, bot_id, kind, body)


def _message(
    record: InboundRecord, bindings: Bindings, bot_id: str, kind: str, message: dict[str, Any]
) -> InboundEvent:
    where = f"telegram {kind}"
    user, from_bot = sender(message, where)
    chat_id = json_fields.int_id_text(message, "chat", where)
    binding = bound(
        bindings.telegram(bot_id, chat_id),
        record.project_id,
        f"telegram bot {bot_id} chat {chat_id}",
    )
    said = read_message(message, where, user, chat_id)
    if from_bot:
        return ignored_message(record, BOT_MESSAGE, said)
    edited = EDITED[kind]
    if edited and not binding.accepts_edits:
        return ignored_message(record, edit_ignored_reason(binding), said)
    if not (said.text or said.attachments):
        reason = (
            "a message with no text, caption or attachment "
            f"(it carries {json_fields.names(carried(message))}): no agent acts on it"
        )
        return ignored_message(record, reason, said)
    return message_event(record, binding, said, edited=edited)
