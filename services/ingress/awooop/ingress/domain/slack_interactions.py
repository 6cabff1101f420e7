"""Slack ``block_actions``: a person pressed a button (or chose an option) of a message.

- An interaction carries no ``event_id``: its ``provider_event_id`` must be
  ``slack_interaction_id(payload)``, ``block_actions:<team.id>:<user.id>:<action_ts>``.
- ``value`` is the first action's ``value``, or its ``selected_option.value`` (a
  select menu); an action with neither (a date picker, a multi-select) is ignored.
- The chat is ``channel.id`` (or ``container.channel_id``); an action in a view (a
  modal, the app home) names no channel and is ignored. The message is
  ``container.message_ts`` (or ``message.ts``); ``thread_id`` is the ``thread_ts`` of
  the container (or the message) when it is a reply in a thread, as for messages.
- The team (``team.id``), the app (``api_app_id``) and the channel choose the binding.
"""

from __future__ import annotations

from typing import Any

from awooop.contracts.records.inbound import InboundRecord, slack_interaction_id
from awooop.ingress.domain import json_fields
from awooop.ingress.domain.bindings import Bindings
from awooop.ingress.domain.inbound_payloads import Pressed, button_event, ignored_event
from awooop.ingress.domain.messages import InboundEvent, InboundRefused
from awooop.ingress.domain.slack_parts import binding_of, thread_of

WHERE = "slack block_actions"


def _value(action: dict[str, Any]) -> str | None:
    value = json_fields.optional_text(action, "value", f"{WHERE}.actions[0]")
    if value is not None:
        return value
    option = json_fields.obj(action, "selected_option", f"{WHERE}.actions[0]")
    if option is None:
        return None
    return json_fields.optional_text(option, "value", f"{WHERE}.actions[0].selected_option")


def _first(*found: str | None) -> str | None:
    return next((value for value in found if value is not None), None)


def normalise_block_actions(
    record: InboundRecord, bindings: Bindings, payload: dict[str, Any]
) -> InboundEvent:
    """The ``ButtonPressed`` a ``block_actions`` interaction becomes, or its ignoring."""
    expected = slack_interaction_id(payload)
    if expected is None:
        raise InboundRefused(
            f"{WHERE} has no string team.id, user.id and actions[0].action_ts to be named by"
        )
    if record.provider_event_id != expected:
        raise InboundRefused(
            f"provider_event_id {record.provider_event_id!r} is not {expected!r}, "
            "the id of this block_actions interaction"
        )
    team_id, user = payload["team"]["id"], payload["user"]["id"]
    action = payload["actions"][0]
    container = json_fields.obj(payload, "container", WHERE) or {}
    channel = json_fields.obj(payload, "channel", WHERE) or {}
    message = json_fields.obj(payload, "message", WHERE) or {}
    channel_id = _first(
        json_fields.optional_text(channel, "id", f"{WHERE}.channel"),
        json_fields.optional_text(container, "channel_id", f"{WHERE}.container"),
    )
    if channel_id is None:
        reason = "a block_actions outside a channel (in a view or the app home): no chat to act in"
        return ignored_event(record, reason, user=user)
    app_id = json_fields.text(payload, "api_app_id", WHERE)
    binding = binding_of(record, bindings, team_id, app_id, channel_id)
    value = _value(action)
    if value is None:
        reason = "a block_actions whose action carries no value: nothing to act on"
        return ignored_event(record, reason, user=user, chat_id=channel_id)
    message_ts = _first(
        json_fields.optional_text(container, "message_ts", f"{WHERE}.container"),
        json_fields.optional_text(message, "ts", f"{WHERE}.message"),
    )
    thread_ts = _first(
        json_fields.optional_text(container, "thread_ts", f"{WHERE}.container"),
        json_fields.optional_text(message, "thread_ts", f"{WHERE}.message"),
    )
    pressed = Pressed(
        user=user,
        chat_id=channel_id,
        thread_id=thread_of(message_ts, thread_ts),
        message_id=message_ts,
        value=value,
    )
    return button_event(record, binding, pressed)
