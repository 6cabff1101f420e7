"""Telegram ``callback_query``: a person pressed an inline keyboard button.

- ``value`` is the query's ``data``; ``callback_id`` its ``id`` (the bridge answers the
  query with it); the chat, message and forum topic are those of ``message``, the
  message that carried the button. The bot and that chat choose the binding.
- A query without its message (too old, or sent from an inline message) names no chat
  and is ignored; one without ``data`` (a game's button) too.
"""

from __future__ import annotations

from typing import Any

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain import json_fields
from awooop.ingress.domain.bindings import Bindings, bound
from awooop.ingress.domain.inbound_payloads import Pressed, button_event, ignored_event
from awooop.ingress.domain.messages import InboundEvent
from awooop.ingress.domain.telegram_parts import topic


def button_event_of(
    record: InboundRecord, bindings: Bindings, bot_id: str, query: dict[str, Any]
) -> InboundEvent:
    """The ``ButtonPressed`` a ``callback_query`` to bot `bot_id` becomes, or its ignoring."""
    where = "telegram callback_query"
    callback_id = json_fields.text(query, "id", where)
    user = json_fields.int_id_text(query, "from", where)
    message = json_fields.obj(query, "message", where)
    if message is None:
        reason = (
            "a callback_query without its message (too old, or from an inline message): "
            "no chat to act in"
        )
        return ignored_event(record, reason, user=user)
    chat_id = json_fields.int_id_text(message, "chat", f"{where}.message")
    binding = bound(
        bindings.telegram(bot_id, chat_id),
        record.project_id,
        f"telegram bot {bot_id} chat {chat_id}",
    )
    data = json_fields.optional_text(query, "data", where)
    if data is None:
        reason = "a callback_query without data (a game's button): no value to act on"
        return ignored_event(record, reason, user=user, chat_id=chat_id)
    pressed = Pressed(
        user=user,
        chat_id=chat_id,
        thread_id=topic(message, f"{where}.message"),
        message_id=json_fields.int_text(message, "message_id", f"{where}.message"),
        value=data,
        callback_id=callback_id,
    )
    return button_event(record, binding, pressed)
