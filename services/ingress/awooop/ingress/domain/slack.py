"""Slack payloads: event callbacks and ``block_actions``, each into one event.

- An ``event_callback``'s ``provider_event_id`` is its ``event_id``, exactly; the team
  (``team_id``, the workspace the app is installed in), the app (``api_app_id``) and
  the event's ``channel`` choose the binding; the subject is ``<project>:slack:<user>``.
- ``message`` events of a person (plain, ``thread_broadcast``, ``file_share``), their
  edits (``message_changed``), bots' messages (``bot_message``) and ``app_mention``
  are bound first, so a channel no binding covers is refused (``InboundUnbound``)
  before anything else is decided; :mod:`~awooop.ingress.domain.slack_messages` then
  says what each becomes.
- Every other message subtype (``message_deleted``, ``channel_join``, …), event type
  (``reaction_added``, …) and payload type (``view_submission``, ``shortcut``, …) is
  ignored before any binding is asked, naming the subtype or type and no one.
- ``block_actions``: see :mod:`~awooop.ingress.domain.slack_interactions`.
"""

from __future__ import annotations

from typing import Any

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain import json_fields
from awooop.ingress.domain.bindings import Bindings
from awooop.ingress.domain.inbound_payloads import ignored_event
from awooop.ingress.domain.messages import InboundEvent, InboundRefused
from awooop.ingress.domain.slack_interactions import normalise_block_actions
from awooop.ingress.domain.slack_messages import edit_event, written_event
from awooop.ingress.domain.slack_parts import binding_of

ACTED_ON_SUBTYPES = (None, "thread_broadcast", "file_share", "message_changed", "bot_message")
WHERE = "slack event_callback"


def normalise_slack(record: InboundRecord, bindings: Bindings) -> InboundEvent:
    """The event a Slack payload becomes; :class:`InboundRefused` when it cannot be one
    (:class:`InboundUnbound` when no binding of the record's project covers the
    channel)."""
    payload = record.payload
    kind = payload.get("type")
    if kind == "event_callback":
        return _event_callback(record, bindings, payload)
    if kind == "block_actions":
        return normalise_block_actions(record, bindings, payload)
    if not (isinstance(kind, str) and kind):
        raise InboundRefused("slack payload has no string type")
    reason = f"a slack payload of type {json_fields.name(kind)}: no agent acts on it"
    return ignored_event(record, reason)


def _event_callback(
    record: InboundRecord, bindings: Bindings, payload: dict[str, Any]
) -> InboundEvent:
    event_id = json_fields.text(payload, "event_id", WHERE)
    if record.provider_event_id != event_id:
        raise InboundRefused(
            f"provider_event_id {record.provider_event_id!r} is not the event callback's "
            f"event_id {event_id!r}"
        )
    event = json_fields.obj(payload, "event", WHERE)
    if event is None:
        raise InboundRefused(f"{WHERE} has no event object")
    event_type = json_fields.text(event, "type", f"{WHERE}.event")
    if event_type not in ("message", "app_mention"):
        reason = f"a slack event of type {json_fields.name(event_type)}: no agent acts on it"
        return ignored_event(record, reason)
    subtype = event.get("subtype") if event_type == "message" else None
    if subtype not in ACTED_ON_SUBTYPES:
        reason = f"a slack message of subtype {json_fields.name(subtype)}: no agent acts on it"
        return ignored_event(record, reason)
    channel = json_fields.text(event, "channel", f"slack {event_type} event")
    team_id = json_fields.text(payload, "team_id", WHERE)
    app_id = json_fields.text(payload, "api_app_id", WHERE)
    binding = binding_of(record, bindings, team_id, app_id, channel)
    if subtype == "message_changed":
        return edit_event(record, binding, event, channel)
    return written_event(record, binding, payload, event, channel)
