"""What a provider is asked to do for one outbound message: Telegram and Slack request bodies.

Pure: an :class:`OutboundRequested` (and the provider id of the message it edits, when
it edits one) in, the calls to make out, in order.

- Telegram holds at most 4,096 UTF-16 code units per message. A longer text becomes
  several messages, split at a newline or else a space in the second half of a part,
  at most :data:`TELEGRAM_MAX_PARTS` of them; what would not fit is cut off with
  :data:`TRUNCATION_MARKER`. An edit rewrites one message, so its text is cut to one
  part. Every part goes to the thread; only the first replies to ``reply_to``; only the
  last carries the buttons, so they sit under the end of the text.
- Slack takes the whole text in one message. Buttons need Block Kit: the text then
  goes into section blocks (3,000 characters each) followed by one actions block.
  An edit always sends its blocks, so buttons of the edited message go away unless
  the edit has its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from awooop.contracts.events.payloads.channel import Button, OutboundRequested

TELEGRAM_TEXT_LIMIT = 4096
"""Telegram's limit of a message's text, counted in UTF-16 code units."""
TELEGRAM_MAX_PARTS = 4
SLACK_SECTION_LIMIT = 3000
"""Slack's limit of a section block's text, in characters."""
SLACK_MAX_SECTIONS = 10
TRUNCATION_MARKER = "\n[… truncated]"

Measure = Callable[[str], int]

_TELEGRAM_ID = re.compile(r"-?[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One API call: the method (``sendMessage``, ``chat.postMessage``, …) and its JSON
    body. ``edits`` is the provider id of the message an edit rewrites."""

    method: str
    body: dict[str, Any]
    edits: str | None = None


@dataclass(frozen=True, slots=True)
class Unrenderable:
    """The message cannot be put to its provider as it is; ``reason`` says why."""

    reason: str


def utf16_units(text: str) -> int:
    """The length of `text` as Telegram counts it: characters outside the Basic
    Multilingual Plane (most emoji) take two UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def render(
    request: OutboundRequested, edit_target: str | None
) -> list[ProviderCall] | Unrenderable:
    """The calls that deliver `request`, in order; an edit of `edit_target` when given."""
    if request.channel_type == "telegram":
        return telegram_calls(request, edit_target)
    return slack_calls(request, edit_target)


def telegram_calls(
    request: OutboundRequested, edit_target: str | None
) -> list[ProviderCall] | Unrenderable:
    """``editMessageText`` of `edit_target`, or one ``sendMessage`` per part of the text."""
    thread = _telegram_id(request.thread_id)
    reply = _telegram_id(request.reply_to)
    if request.thread_id is not None and thread is None:
        return Unrenderable(f"thread_id {request.thread_id!r} is not a Telegram message_thread_id")
    if request.reply_to is not None and reply is None:
        return Unrenderable(f"reply_to {request.reply_to!r} is not a Telegram message_id")
    markup = {"reply_markup": _inline_keyboard(request.buttons)} if request.buttons else {}
    target = _telegram_id(edit_target)
    if target is not None:
        (text,) = split_text(request.text, TELEGRAM_TEXT_LIMIT, 1, utf16_units)
        body = {"chat_id": request.chat_id, "message_id": target, "text": text, **markup}
        return [ProviderCall("editMessageText", body, edits=edit_target)]
    parts = split_text(request.text, TELEGRAM_TEXT_LIMIT, TELEGRAM_MAX_PARTS, utf16_units)
    calls = []
    for n, part in enumerate(parts):
        body = {"chat_id": request.chat_id, "text": part}
        if thread is not None:
            body["message_thread_id"] = thread
        if n == 0 and reply is not None:
            # A deleted original should not cost the answer.
            body["reply_parameters"] = {"message_id": reply, "allow_sending_without_reply": True}
        if n == len(parts) - 1:
            body |= markup
        calls.append(ProviderCall("sendMessage", body))
    return calls


def slack_calls(request: OutboundRequested, edit_target: str | None) -> list[ProviderCall]:
    """``chat.update`` of `edit_target`, or one ``chat.postMessage``."""
    body: dict[str, Any] = {"channel": request.chat_id, "text": request.text}
    if edit_target is not None:
        body |= {"ts": edit_target, "blocks": slack_blocks(request.text, request.buttons)}
        return [ProviderCall("chat.update", body, edits=edit_target)]
    thread = request.thread_id or request.reply_to
    if thread is not None:
        body["thread_ts"] = thread
    if request.buttons:
        body["blocks"] = slack_blocks(request.text, request.buttons)
    return [ProviderCall("chat.postMessage", body)]


def slack_blocks(text: str, buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    """Section blocks holding `text`, then an actions block of `buttons` (when any)."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        for part in split_text(text, SLACK_SECTION_LIMIT, SLACK_MAX_SECTIONS, len)
    ]
    if buttons:
        elements = [
            {
                "type": "button",
                "action_id": f"button-{n}",
                "text": {"type": "plain_text", "text": button.label},
                "value": button.value,
            }
            for n, button in enumerate(buttons)
        ]
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def split_text(text: str, limit: int, max_parts: int, measure: Measure) -> list[str]:
    """`text` in at most `max_parts` parts of at most `limit` (by `measure`) each.

    A part ends at the last newline, else the last space, found in the second half of
    what fits (the separator itself is dropped), else where the limit falls; the last
    allowed part is cut with :data:`TRUNCATION_MARKER` when the text goes on. A text
    that fits comes back whole.
    """
    parts: list[str] = []
    rest = text
    while rest:
        if measure(rest) <= limit:
            parts.append(rest)
            break
        if len(parts) == max_parts - 1:
            parts.append(_truncated(rest, limit, measure))
            break
        end, start = _cut(rest, _fit(rest, limit, measure))
        if rest[:end].strip():
            parts.append(rest[:end])
        rest = rest[start:]
    return parts or [text]


def _fit(text: str, limit: int, measure: Measure) -> int:
    """The number of leading characters of `text` that measure at most `limit`."""
    if measure is len:
        return min(len(text), limit)
    used = 0
    for index, char in enumerate(text):
        used += measure(char)
        if used > limit:
            return index
    return len(text)


def _cut(text: str, hard: int) -> tuple[int, int]:
    """Where a part of `text` no longer than `hard` characters ends, and the rest starts."""
    for separator in ("\n", " "):
        at = text.rfind(separator, 0, hard)
        if at >= hard // 2 and at > 0:
            end = at - 1 if separator == "\n" and text[at - 1] == "\r" else at
            return end, at + 1
    return hard, hard


def _truncated(text: str, limit: int, measure: Measure) -> str:
    hard = _fit(text, limit - measure(TRUNCATION_MARKER), measure)
    end, _start = _cut(text, hard)
    return text[:end].rstrip() + TRUNCATION_MARKER


def _telegram_id(value: str | None) -> int | None:
    if value is None or _TELEGRAM_ID.fullmatch(value) is None:
        return None
    return int(value)


def _inline_keyboard(buttons: tuple[Button, ...]) -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": b.label, "callback_data": b.value} for b in buttons]]}
