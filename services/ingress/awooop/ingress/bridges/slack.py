"""The Slack request URLs: what a verified Events API or interactivity request asks for.

Events API bodies are JSON: ``url_verification`` is answered with its challenge, an
``event_callback`` is produced under its ``event_id``, any other type (such as
``app_rate_limited``) is acknowledged and not produced. Interactivity bodies are
form-encoded ``payload=<JSON>``: ``block_actions`` is produced under
:func:`slack_interaction_id`; other interaction types are acknowledged and not produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from awooop.contracts.records.inbound import slack_interaction_id
from awooop.ingress.bridges.framing import BadRequest, Inbound, parse_object

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
RETRY_HEADER = "x-slack-retry-num"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A ``url_verification`` request: answer ``{"challenge": value}``, produce nothing."""

    value: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A verified request the bridges do not produce; ``reason`` says which kind it was."""

    reason: str


def slack_event(body: bytes) -> Inbound | Challenge | Ignored:
    """What an Events API request asks for; :class:`BadRequest` when it is malformed."""
    event = parse_object(body, "Slack event")
    kind = event.get("type")
    if kind == "url_verification":
        challenge = event.get("challenge")
        if not isinstance(challenge, str):
            raise BadRequest("url_verification has no string challenge")
        return Challenge(challenge)
    if kind != "event_callback":
        return Ignored(f"Slack request type {kind!r} is not an event callback")
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise BadRequest("the event callback has no event_id")
    return Inbound("slack", event_id, body)


def slack_interaction(body: bytes) -> Inbound | Ignored:
    """What an interactivity request asks for; :class:`BadRequest` when the form, its
    ``payload`` JSON, or a ``block_actions`` id is malformed."""
    try:
        fields = parse_qs(body.decode(), strict_parsing=True, errors="strict", max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the interaction is not a form-encoded body") from None
    values = fields.get("payload", [])
    if len(values) != 1:
        raise BadRequest("the interaction form must hold exactly one payload field")
    raw = values[0].encode()
    payload = parse_object(raw, "interaction payload")
    kind = payload.get("type")
    if kind != "block_actions":
        return Ignored(f"Slack interaction type {kind!r} is not block_actions")
    interaction_id = slack_interaction_id(payload)
    if interaction_id is None:
        raise BadRequest(
            "the block_actions payload lacks a team.id, user.id or actions[0].action_ts"
        )
    return Inbound("slack", interaction_id, raw)
