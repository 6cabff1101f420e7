"""Reading one Telegram ``Message``: sender, chat, topic, text, entities, attachments.

- The sender is ``sender_chat`` when present (a channel post, a message of an anonymous
  group admin, a linked channel's post forwarded to its discussion group), else
  ``from``. On behalf of a chat, Telegram puts a placeholder user in ``from`` (an
  anonymous admin's is the bot @GroupAnonymousBot): it is neither the sender nor a bot.
- ``thread_id`` is the forum topic, ``message_thread_id``, only when
  ``is_topic_message`` is true: Telegram also sets ``message_thread_id`` on a reply
  outside any topic (it then names the replied-to thread).
- ``text`` is ``text``, else ``caption``, exactly; ``entities`` (or
  ``caption_entities``) are converted from UTF-16 offsets.
- Attachments are metadata: the largest ``photo`` size (by pixels), then
  ``animation``, ``document``, ``video``, ``audio``, ``voice``, ``sticker`` (its
  emoji), ``video_note``. An animation also comes with a ``document`` twin, for old
  clients: it is one attachment, the animation.
"""

from __future__ import annotations

from typing import Any

from awooop.ingress.domain import json_fields
from awooop.ingress.domain.entities import bot_command, telegram_entities
from awooop.ingress.domain.inbound_payloads import Said
from awooop.ingress.domain.messages import InboundRefused

MEDIA = ("animation", "document", "video", "audio", "voice", "sticker", "video_note")

_ATTACHMENT_FIELDS = (
    ("file_id", "file_id"),
    ("name", "file_name"),
    ("mime_type", "mime_type"),
    ("size_bytes", "file_size"),
    ("emoji", "emoji"),
)

_NOT_CONTENT = frozenset(
    {
        "message_id", "message_thread_id", "from", "sender_chat", "sender_boost_count",
        "sender_business_bot", "sender_tag", "date", "business_connection_id", "chat",
        "forward_origin", "forward_from", "forward_from_chat", "forward_from_message_id",
        "forward_signature", "forward_sender_name", "forward_date", "is_topic_message",
        "is_automatic_forward", "reply_to_message", "external_reply", "quote",
        "reply_to_story", "via_bot", "edit_date", "has_protected_content",
        "is_from_offline", "is_paid_post", "media_group_id", "author_signature",
        "paid_star_count", "text", "entities", "caption", "caption_entities",
        "link_preview_options", "effect_id", "show_caption_above_media",
        "has_media_spoiler", "reply_markup",
    }
)  # fmt: skip
"""The fields of a message that say nothing by themselves: what is left names what a
message without text or attachment carries (``new_chat_members``, ``poll``, …)."""


def sender(message: dict[str, Any], where: str) -> tuple[str, bool]:
    """The sender's id, and whether it is a bot."""
    if message.get("sender_chat") is not None:
        return json_fields.int_id_text(message, "sender_chat", where), False
    user = json_fields.int_id_text(message, "from", where)
    return user, message["from"].get("is_bot") is True


def topic(message: dict[str, Any], where: str) -> str | None:
    """The forum topic of the message, when it is a topic message."""
    if message.get("is_topic_message") is not True:
        return None
    return json_fields.int_text(message, "message_thread_id", f"{where} in a topic")


def _largest(sizes: object, where: str) -> dict[str, Any]:
    if not (isinstance(sizes, list) and sizes and all(isinstance(s, dict) for s in sizes)):
        raise InboundRefused(f"{where}.photo is not a non-empty array of sizes")

    def pixels(size: dict[str, Any]) -> int:
        width, height = size.get("width"), size.get("height")
        both = json_fields.is_int(width) and json_fields.is_int(height)
        return width * height if both else 0  # type: ignore[operator]

    # Telegram lists sizes smallest first: on a tie the later one wins.
    return max(reversed(sizes), key=pixels)


def _attachment(kind: str, media: object, where: str) -> dict[str, Any]:
    if not isinstance(media, dict):
        raise InboundRefused(f"{where}.{kind} is not an object")
    fields = {"kind": kind}
    fields |= {ours: media[theirs] for ours, theirs in _ATTACHMENT_FIELDS if theirs in media}
    return fields


def attachments(message: dict[str, Any], where: str) -> tuple[dict[str, Any], ...]:
    """The metadata of what the message carries besides text."""
    found = []
    if message.get("photo") is not None:
        found.append(_attachment("photo", _largest(message["photo"], where), where))
    for kind in MEDIA:
        if message.get(kind) is None or (
            kind == "document" and message.get("animation") is not None
        ):
            continue
        found.append(_attachment(kind, message[kind], where))
    return tuple(found)


def _text_and_entities(message: dict[str, Any], where: str) -> tuple[str, tuple[Any, ...]]:
    field, entities = ("text", "entities") if "text" in message else ("caption", "caption_entities")
    text = message.get(field)
    if text is None:
        return "", ()
    if not isinstance(text, str):
        raise InboundRefused(f"{where}.{field} is not a string")
    return text, telegram_entities(text, message.get(entities), f"{where}.{entities}")


def read_message(message: dict[str, Any], where: str, user: str, chat_id: str) -> Said:
    """What the message says; `where` names it in a refusal (``telegram message``)."""
    text, entities = _text_and_entities(message, where)
    return Said(
        user=user,
        chat_id=chat_id,
        thread_id=topic(message, where),
        message_id=json_fields.int_text(message, "message_id", where),
        text=text,
        attachments=attachments(message, where),
        entities=entities,
        command=bot_command(entities),
    )


def carried(message: dict[str, Any]) -> list[str]:
    """What a message carries that is neither text nor attachment."""
    return [key for key in message if key not in _NOT_CONTENT and key != "photo"]
