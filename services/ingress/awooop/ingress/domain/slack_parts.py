"""Reading Slack objects: a message's author, thread, text and files; bots; mentions.

- ``text`` stays exactly as Slack sent it: its ``&lt;`` escapes and ``<@U…>`` mentions
  included (the agent reads Slack's markup as people wrote it); Slack marks no entities.
- ``thread_id`` is ``thread_ts`` when it differs from the message's own ``ts``: a reply
  in a thread. A thread's parent carries ``thread_ts == ts`` and is in no thread.
- A file shared is an attachment of kind ``file``: its ``id``, ``name``, ``mimetype``
  and ``size``, never its content.
"""

from __future__ import annotations

from typing import Any

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain import json_fields
from awooop.ingress.domain.bindings import Binding, Bindings, bound
from awooop.ingress.domain.inbound_payloads import Said
from awooop.ingress.domain.messages import InboundRefused

_FILE_FIELDS = (
    ("file_id", "id"),
    ("name", "name"),
    ("mime_type", "mimetype"),
    ("size_bytes", "size"),
)


def binding_of(
    record: InboundRecord, bindings: Bindings, team_id: str, app_id: str, channel: str
) -> Binding:
    """The binding of a Slack channel of the app installed in the team."""
    return bound(
        bindings.slack(team_id, app_id, channel),
        record.project_id,
        f"slack team {team_id} app {app_id} channel {channel}",
    )


def thread_of(ts: str | None, thread_ts: str | None) -> str | None:
    """The thread a message with this ``ts`` and ``thread_ts`` is a reply in."""
    return thread_ts if thread_ts is not None and thread_ts != ts else None


def files(message: dict[str, Any], where: str) -> tuple[dict[str, Any], ...]:
    """The metadata of the files shared with the message."""
    raw = message.get("files")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InboundRefused(f"{where}.files is not an array")
    found = []
    for number, file in enumerate(raw):
        if not isinstance(file, dict):
            raise InboundRefused(f"{where}.files[{number}] is not an object")
        fields = {"kind": "file"}
        fields |= {ours: file[theirs] for ours, theirs in _FILE_FIELDS if theirs in file}
        found.append(fields)
    return tuple(found)


def message_text(message: dict[str, Any], where: str) -> str:
    """The message's ``text``, exactly; empty when it has none."""
    text = message.get("text")
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InboundRefused(f"{where}.text is not a string")
    return text


def read_said(message: dict[str, Any], where: str, channel: str) -> Said:
    """What a person wrote in a message (or ``app_mention``) event of `channel`."""
    ts = json_fields.text(message, "ts", where)
    return Said(
        user=json_fields.text(message, "user", where),
        chat_id=channel,
        thread_id=thread_of(ts, json_fields.optional_text(message, "thread_ts", where)),
        message_id=ts,
        text=message_text(message, where),
        attachments=files(message, where),
    )


def bot_reason(message: dict[str, Any]) -> str | None:
    """Why the message is a bot's, or ``None`` for a person's: it has a ``bot_id`` (an
    app posted it, this one included) or the ``bot_message`` subtype."""
    if message.get("bot_id") is not None:
        bot_id = json_fields.name(message["bot_id"])
        return f"a bot's message (bot_id {bot_id}): only people start runs"
    if message.get("subtype") == "bot_message":
        return "a bot's message (subtype 'bot_message'): only people start runs"
    return None


def bot_users(payload: dict[str, Any]) -> list[str]:
    """The user ids the event was delivered for (``authorizations[].user_id``): the
    app's own bot user among them."""
    authorizations = payload.get("authorizations")
    if not isinstance(authorizations, list):
        return []
    found = (entry.get("user_id") for entry in authorizations if isinstance(entry, dict))
    return [user for user in found if isinstance(user, str) and user]


def mentioned(text: str, users: list[str]) -> str | None:
    """The first of `users` the text mentions, as ``<@U…>`` or ``<@U…|name>``."""
    for user in users:
        if f"<@{user}>" in text or f"<@{user}|" in text:
            return user
    return None
