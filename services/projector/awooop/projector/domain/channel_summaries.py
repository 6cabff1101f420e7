"""Timeline summaries of the channel events that belong to a run: the message that
started it, the messages it asked to send, and what became of each.

Like every summary (summaries.py) they keep identifiers, codes, names and sizes only:
neither what the person wrote (not even its redacted `display_text`), nor the text or
buttons of a reply, nor a delivery's failure reason.
"""

from __future__ import annotations

from typing import Any

Summary = dict[str, Any]


def message_received(p: Any) -> Summary:
    edited = " (edited)" if p.edited else ""
    return {
        "text": f"message received on {p.channel_type}{edited}",
        "channel_type": p.channel_type,
        "chat_id": p.chat_id,
        "platform_subject_id": p.platform_subject_id,
        "provider_event_id": p.provider_event_id,
        "thread_id": p.thread_id,
        "message_id": p.message_id,
        "display_text_length": len(p.display_text),
        "attachments": [attachment.kind for attachment in p.attachments],
        "command": p.command,
        "edited": p.edited,
    }


def outbound_requested(p: Any) -> Summary:
    edits = " (an edit)" if p.edit_of is not None else ""
    return {
        "text": f"{p.kind} message requested on {p.channel_type}{edits}",
        "kind": p.kind,
        "channel_type": p.channel_type,
        "chat_id": p.chat_id,
        "thread_id": p.thread_id,
        "reply_to": p.reply_to,
        "text_length": len(p.text),
        "buttons": len(p.buttons),
        "edit_of": None if p.edit_of is None else str(p.edit_of),
        "deliver_before": p.deliver_before.isoformat(),
    }


def delivery_reported(p: Any) -> Summary:
    why = f": {p.code}" if p.code is not None else ""
    return {
        "text": f"{p.kind} message {p.status}{why}",
        "outbound_event_id": str(p.outbound_event_id),
        "kind": p.kind,
        "channel_type": p.channel_type,
        "chat_id": p.chat_id,
        "status": p.status,
        "attempts": p.attempts,
        "provider_message_ids": list(p.provider_message_ids),
        "code": p.code,
    }
