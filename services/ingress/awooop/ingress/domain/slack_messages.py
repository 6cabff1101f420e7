"""What a Slack message of a bound channel becomes.

- A person's plain message (in a DM, ``channel_type: im``, a channel, a private
  channel or a group DM), a ``thread_broadcast`` (a thread reply also sent to the
  channel), a ``file_share`` and an ``app_mention`` become a ``MessageReceived``; one
  with neither text nor file is ignored.
- A bot's message (any ``bot_id``, or the ``bot_message`` subtype: the agent's own
  replies among them) is ignored.
- Slack sends a ``message`` event besides the ``app_mention`` for one mention in a
  channel: a ``message`` outside a DM whose text mentions the app's own bot user (an
  ``authorizations[].user_id``) is ignored, so one mention starts one run.
- ``message_changed`` carries the new version in ``event.message``: it becomes a
  message with ``edited`` set when the agent opted in to edits (its contract's
  ``edits: as_message``), else it is ignored naming the agent. One without
  ``message.edited`` is no edit (Slack sends it when it unfurls a link or counts a
  thread's replies) and is ignored.
"""

from __future__ import annotations

from typing import Any

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain import json_fields
from awooop.ingress.domain.bindings import Binding
from awooop.ingress.domain.inbound_payloads import (
    edit_ignored_reason,
    ignored_event,
    ignored_message,
    message_event,
)
from awooop.ingress.domain.messages import InboundEvent, InboundRefused
from awooop.ingress.domain.slack_parts import (
    bot_reason,
    bot_users,
    mentioned,
    message_text,
    read_said,
)


def written_event(
    record: InboundRecord,
    binding: Binding,
    payload: dict[str, Any],
    event: dict[str, Any],
    channel: str,
) -> InboundEvent:
    """The event of a ``message`` (not an edit) or ``app_mention`` event of `channel`."""
    where = f"slack {event['type']} event"
    if bot := bot_reason(event):
        return _ignored_bot(record, bot, event, where, channel)
    said = read_said(event, where, channel)
    if event["type"] == "message" and event.get("channel_type") != "im":
        bot_user = mentioned(said.text, bot_users(payload))
        if bot_user is not None:
            reason = (
                f"a message mentioning the app's bot user <@{bot_user}>: "
                "its app_mention event starts the run"
            )
            return ignored_message(record, reason, said)
    if not (said.text or said.attachments):
        return ignored_message(record, "a message with no text or file: no agent acts on it", said)
    return message_event(record, binding, said)


def edit_event(
    record: InboundRecord, binding: Binding, event: dict[str, Any], channel: str
) -> InboundEvent:
    """The event of a ``message_changed`` event of `channel`."""
    where = "slack message_changed event.message"
    message = json_fields.obj(event, "message", "slack message_changed event")
    if message is None:
        raise InboundRefused("slack message_changed event has no message object")
    if bot := bot_reason(message):
        return _ignored_bot(record, bot, message, where, channel)
    if message.get("edited") is None:
        reason = (
            "a message_changed that is no edit (a link unfurled, or a thread's replies "
            "counted): nothing was rewritten"
        )
        user = json_fields.optional_text(message, "user", where)
        return ignored_event(record, reason, user=user, chat_id=channel)
    said = read_said(message, where, channel)
    if not binding.accepts_edits:
        return ignored_message(record, edit_ignored_reason(binding), said)
    return message_event(record, binding, said, edited=True)


def _ignored_bot(
    record: InboundRecord, reason: str, message: dict[str, Any], where: str, channel: str
) -> InboundEvent:
    user = json_fields.optional_text(message, "user", where)
    text = message_text(message, where)
    return ignored_event(record, reason, user=user, chat_id=channel, text=text)
