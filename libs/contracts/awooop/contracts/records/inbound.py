"""The inbound record: the value of ``awooop.channel.inbound.v1``, which is not an envelope.

Bridges and outside producers have no event store, so they publish this plain record;
ingress validates it, checks its id against the payload, and emits the first envelope.
``payload`` is the provider's object exactly as received (a Telegram update, a Slack
event callback or interaction).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from awooop.contracts.events.payloads.fields import ChannelType, ProviderEventId
from awooop.contracts.records.envelope import ProjectId
from awooop.contracts.records.headers import TRACEPARENT_PATTERN
from awooop.contracts.records.parsing import (
    NotAJsonObjectError,
    describe_validation_error,
    load_json_object,
)
from awooop.contracts.registries.errors import (
    E_INBOUND_INVALID,
    E_INBOUND_OVERSIZE,
    CodedError,
    ErrorCode,
)
from awooop.contracts.registries.topics import MAX_RECORD_BYTES


class InboundRecord(BaseModel):
    """One message, button press or event from a chat provider, as a bridge saw it.

    ``provider_event_id`` is the de-duplication id (Telegram: ``<bot_id>:<update_id>``;
    Slack: the callback's ``event_id``). ``traceparent``, when present, is W3C.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: ProjectId
    channel_type: ChannelType
    provider_event_id: ProviderEventId
    received_at: AwareDatetime
    traceparent: Annotated[str, Field(pattern=TRACEPARENT_PATTERN)] | None = None
    payload: dict[str, Any]


class InboundRecordInvalid(CodedError):
    """An inbound record was refused; ``reason`` says why, ``code`` is registered."""

    error: ErrorCode = E_INBOUND_INVALID


class InboundRecordOversize(InboundRecordInvalid):
    """The inbound record is larger than ``MAX_RECORD_BYTES``."""

    error = E_INBOUND_OVERSIZE


def parse_inbound(value: bytes) -> InboundRecord:
    """Validate the bytes of an inbound record.

    Raises :class:`InboundRecordOversize` above ``MAX_RECORD_BYTES`` (checked before any
    parsing) and :class:`InboundRecordInvalid` for bytes that are not a UTF-8 JSON object
    or fail validation.
    """
    if len(value) > MAX_RECORD_BYTES:
        reason = f"inbound record of {len(value)} bytes is over the {MAX_RECORD_BYTES} byte limit"
        raise InboundRecordOversize(reason)
    try:
        return InboundRecord.model_validate_json(value)
    except ValidationError as error:
        # Only on failure: parse again to tell "not a JSON object" apart in plain words.
        try:
            load_json_object(value)
        except NotAJsonObjectError as not_object:
            raise InboundRecordInvalid(not_object.reason) from error
        raise InboundRecordInvalid(describe_validation_error(error)) from error


SLACK_INTERACTION_PREFIX = "block_actions"


def slack_interaction_id(payload: dict[str, Any]) -> str | None:
    """The ``provider_event_id`` of a Slack ``block_actions`` interaction, which carries no
    ``event_id``: ``block_actions:<team.id>:<user.id>:<actions[0].action_ts>``.

    Every part comes from the payload, so the same press posted twice (a bridge's retry)
    names itself the same way, and two presses differ by who pressed or when (Slack's
    ``action_ts`` has microseconds). ``None`` when a part is missing or not a string.
    """
    team, user, actions = payload.get("team"), payload.get("user"), payload.get("actions")
    if not (isinstance(team, dict) and isinstance(user, dict) and isinstance(actions, list)):
        return None
    first = actions[0] if actions else None
    parts = (
        team.get("id"),
        user.get("id"),
        first.get("action_ts") if isinstance(first, dict) else None,
    )
    if not all(isinstance(part, str) and part and ":" not in part for part in parts):
        return None
    return ":".join((SLACK_INTERACTION_PREFIX, *parts))  # type: ignore[arg-type]
