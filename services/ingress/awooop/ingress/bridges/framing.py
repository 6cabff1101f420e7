"""What a bridge makes of a verified request: an inbound record's key and value bytes.

The record's ``payload`` is the provider's JSON object spliced in byte for byte, never
re-serialised, so ingress reads exactly what the provider sent. The framed value is then
parsed as ingress will parse it (:func:`parse_inbound`), so nothing ingress would refuse
for its shape or size ever reaches the topic.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from awooop.contracts.events.payloads.fields import ChannelType
from awooop.contracts.records.envelope import new_trace_id
from awooop.contracts.records.headers import make_traceparent, trace_id_of
from awooop.contracts.records.inbound import (
    InboundRecordInvalid,
    InboundRecordOversize,
    parse_inbound,
)
from awooop.contracts.records.parsing import NotAJsonObjectError, load_json_object
from awooop.contracts.registries.topics import MAX_RECORD_BYTES

FRAMING_HEADROOM = 16 * 1024
"""Bytes kept for the record's own fields around the payload. They take under 1 KiB
(a project id of 64 characters, a provider_event_id of 256, a timestamp, a traceparent)."""

MAX_BODY_BYTES = MAX_RECORD_BYTES - FRAMING_HEADROOM
"""The largest request body a bridge reads (1,032,192 bytes): its record stays within
``MAX_RECORD_BYTES``. A form-encoded Slack interaction only shrinks when decoded."""


class BadRequest(Exception):
    """The request cannot become an inbound record; ``status`` is 400 or 413."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Inbound:
    """A verified provider object to produce, named by its de-duplication id."""

    channel_type: ChannelType
    provider_event_id: str
    payload: bytes
    """The provider's JSON object, the bytes exactly as received."""


def parse_object(body: bytes, what: str = "body") -> dict[str, Any]:
    """``body`` as a JSON object; :class:`BadRequest` naming ``what`` otherwise."""
    try:
        return load_json_object(body)
    except NotAJsonObjectError as error:
        raise BadRequest(f"the {what} is {error.reason}") from None


def traceparent_for(incoming: str | None) -> str:
    """A W3C traceparent for this hop: the incoming trace when its header is valid, else a
    new trace; the span id is always new (the bridge is a hop of its own)."""
    if incoming is not None:
        try:
            return make_traceparent(trace_id_of(incoming.strip()))
        except ValueError:
            pass
    return make_traceparent(new_trace_id())


def frame_record(
    project_id: str, inbound: Inbound, *, received_at: dt.datetime, traceparent: str
) -> tuple[bytes, bytes]:
    """The record's key (``project_id:provider_event_id``) and value.

    :class:`BadRequest` with status 413 when the value would exceed ``MAX_RECORD_BYTES``,
    400 when ingress would refuse it (the reason says why).
    """
    head = {
        "project_id": project_id,
        "channel_type": inbound.channel_type,
        "provider_event_id": inbound.provider_event_id,
        "received_at": received_at.isoformat(),
        "traceparent": traceparent,
    }
    framed = json.dumps(head, separators=(",", ":")).encode()
    value = b"".join((framed[:-1], b',"payload":', inbound.payload, b"}"))
    try:
        parse_inbound(value)
    except InboundRecordOversize as oversize:
        raise BadRequest(oversize.reason, status=413) from None
    except InboundRecordInvalid as invalid:
        raise BadRequest(f"not a valid inbound record: {invalid.reason}") from None
    return f"{project_id}:{inbound.provider_event_id}".encode(), value
