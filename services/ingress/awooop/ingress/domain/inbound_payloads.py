"""The three events a channel's reading of a record ends in: a message, a button press,
or a record ignored with its reason.

Both channels build them here, so the rules they share hold once: ``text`` is kept
exactly as sent and ``display_text`` is its redacted form; the subject is
``<project>:<channel>:<user>``; ``received_at`` is the bridge's instant in UTC; the
payload is validated strictly (no coercion of a provider's ill-typed field), and a
failure refuses the record with pydantic's own summary of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from pydantic import ValidationError

from awooop.contracts.events.payloads.ingress import ButtonPressed, InboundIgnored, MessageReceived
from awooop.contracts.records.inbound import InboundRecord
from awooop.contracts.records.parsing import describe_validation_error
from awooop.ingress.domain.bindings import Binding
from awooop.ingress.domain.messages import InboundEvent, InboundPayload, InboundRefused, trace_of
from awooop.security.redaction import redact_text


@dataclass(frozen=True, slots=True)
class Said:
    """What a person wrote, as a channel read it. `user` is the provider's user id;
    `attachments` and `entities` are the payload's fields, not yet validated."""

    user: str
    chat_id: str
    thread_id: str | None
    message_id: str | None
    text: str
    attachments: tuple[dict[str, Any], ...] = ()
    entities: tuple[dict[str, Any], ...] = ()
    command: str | None = None


@dataclass(frozen=True, slots=True)
class Pressed:
    """A button press, as a channel read it."""

    user: str
    chat_id: str
    thread_id: str | None
    message_id: str | None
    value: str
    callback_id: str | None = None


def subject_of(record: InboundRecord, user: str) -> str:
    """The ``platform_subject_id`` of `user` on the record's channel and project."""
    return f"{record.project_id}:{record.channel_type}:{user}"


def _event(
    record: InboundRecord, model: type[InboundPayload], fields: dict[str, Any]
) -> InboundEvent:
    common = {
        "channel_type": record.channel_type,
        "provider_event_id": record.provider_event_id,
        "received_at": record.received_at.astimezone(UTC),
    }
    try:
        payload = model.model_validate(common | fields, strict=True)
    except ValidationError as error:
        raise InboundRefused(describe_validation_error(error)) from error
    return InboundEvent(record.project_id, payload, trace_of(record))


def message_event(
    record: InboundRecord, binding: Binding, said: Said, *, edited: bool = False
) -> InboundEvent:
    """A ``MessageReceived`` for the agent of `binding`."""
    return _event(
        record,
        MessageReceived,
        {
            "platform_subject_id": subject_of(record, said.user),
            "chat_id": said.chat_id,
            "thread_id": said.thread_id,
            "message_id": said.message_id,
            "text": said.text,
            "display_text": redact_text(said.text),
            "attachments": said.attachments,
            "entities": said.entities,
            "command": said.command,
            "edited": edited,
            "agent_id": binding.agent_id,
            "revisions": (binding.revision,),
        },
    )


def button_event(record: InboundRecord, binding: Binding, pressed: Pressed) -> InboundEvent:
    """A ``ButtonPressed`` for the agent of `binding`."""
    return _event(
        record,
        ButtonPressed,
        {
            "platform_subject_id": subject_of(record, pressed.user),
            "chat_id": pressed.chat_id,
            "thread_id": pressed.thread_id,
            "message_id": pressed.message_id,
            "value": pressed.value,
            "callback_id": pressed.callback_id,
            "agent_id": binding.agent_id,
            "revisions": (binding.revision,),
        },
    )


def ignored_event(
    record: InboundRecord,
    reason: str,
    *,
    user: str | None = None,
    chat_id: str | None = None,
    text: str = "",
) -> InboundEvent:
    """An ``InboundIgnored``: the record starts nothing, for `reason`. The person and the
    chat are named when known; `text` is what was written, shown only redacted."""
    return _event(
        record,
        InboundIgnored,
        {
            "platform_subject_id": None if user is None else subject_of(record, user),
            "chat_id": chat_id,
            "reason": reason,
            "display_text": redact_text(text),
        },
    )


def ignored_message(record: InboundRecord, reason: str, said: Said) -> InboundEvent:
    """An ``InboundIgnored`` for a message that starts nothing."""
    return ignored_event(record, reason, user=said.user, chat_id=said.chat_id, text=said.text)


def edit_ignored_reason(binding: Binding) -> str:
    """Why an edit is ignored: its agent did not opt in."""
    return (
        f"an edited message: agent {binding.agent_id!r} does not take edits "
        "(its contract's edits is 'ignore')"
    )
